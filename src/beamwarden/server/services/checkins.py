"""Room: server/services. Check-ins: scheduled jobs (a nightly backup, a cron script) that ping
the server, and the alert a missing or failed ping becomes.

A check has an interval (``every``) or a five-field cron schedule (``cron``, UTC) and a grace
time. Its slug is the secret in its URL (``POST /api/checkins/<slug>``; ``…/fail`` for a failure):
``bwc_`` + 192 random bits, shown once at creation and stored only as its SHA-256 hash, like
tokens. The cron parser is ours (:class:`CronSchedule`, no dependency): minute, hour,
day-of-month, month, day-of-week, each ``*``, ``N``, ``A-B``, lists and ``/step``; day-of-week
0–7 (0 and 7 are Sunday); when both day fields are restricted either may match (as cron does).

:func:`evaluate_checkins` is pure (``now`` is an argument): per check, the alert fires when the
last ping reported a failure, or when no ping came by the next due time plus the grace time; it
resolves with the next successful ping. Its state is an :class:`AlertState` of the pseudo-rule
``checkin`` (one subject per check), persisted with the other rules' states.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from beamwarden.fleet.alerts import (
    AlertState,
    AlertStatus,
    SubjectState,
    Transition,
    TransitionKind,
    parse_duration,
)
from beamwarden.server.alert_records import CheckinRow
from beamwarden.server.errors import InvalidRequest, NotFound
from beamwarden.server.records import from_us, to_us
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.credentials import hash_token

#: the alert state key (and the rule name in transitions) of every check-in
CHECKIN_RULE = "checkin"
SLUG_PREFIX = "bwc_"
CHECKIN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

# --- cron ----------------------------------------------------------------------------------------

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))
#: how far ahead a schedule is searched (a "30 2 31 2 *" never comes)
_HORIZON_DAYS = 366 * 5


def _parse_field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = lo, hi
            elif "-" in body:
                a, b = body.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = int(body)
                end = hi if step_text else start
        except ValueError:
            raise InvalidRequest(
                f"cron {name}: {part!r} is not a number, a range A-B, * or */N",
                code="invalid_schedule",
            ) from None
        if step < 1 or not lo <= start <= end <= hi:
            raise InvalidRequest(
                f"cron {name}: {part!r} is outside {lo}–{hi} (or its step is below 1)",
                code="invalid_schedule",
            )
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A five-field cron expression, in UTC."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday … 6 = Sunday (Python's)
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        parts = text.split()
        if len(parts) != 5:
            raise InvalidRequest(
                "a cron schedule has five fields: minute hour day-of-month month day-of-week",
                code="invalid_schedule",
            )
        parsed = [
            _parse_field(p, n, lo, hi) for p, (n, lo, hi) in zip(parts, _FIELDS, strict=False)
        ]
        cron_days = _parse_field(parts[4], "day of week", 0, 7)
        weekdays = frozenset((d - 1) % 7 for d in cron_days)  # cron 0/7 = Sunday = Python 6
        return cls(
            parsed[0], parsed[1], parsed[2], parsed[3], weekdays, parts[2] != "*", parts[4] != "*"
        )

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_day or by_weekday
        return by_day and by_weekday

    def next_after(self, moment: datetime) -> datetime | None:
        """The first scheduled minute strictly after ``moment`` (``None``: never, within years)."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for offset in range(_HORIZON_DAYS):
            current = day + timedelta(days=offset)
            if not self._day_matches(current):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    candidate = current.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
        return None


# --- the checks' alert ---------------------------------------------------------------------------


def next_due(check: CheckinRow) -> datetime | None:
    """When the next ping is expected (before the grace time)."""
    base = from_us(check.last_ping_us if check.last_ping_us is not None else check.created_us)
    if check.every_s is not None:
        return base + timedelta(seconds=check.every_s)
    if check.cron is not None:
        return CronSchedule.parse(check.cron).next_after(base)
    return None


def _verdict(check: CheckinRow, now: datetime) -> tuple[bool, str]:
    """(alerting, why)."""
    if check.last_status == "fail":
        message = f": {check.last_message}" if check.last_message else ""
        return True, f"the last check-in reported a failure{message}"
    due = next_due(check)
    if due is None:
        return False, ""
    deadline = due + timedelta(seconds=check.grace_s)
    if now > deadline:
        return (
            True,
            f"no check-in since it was due at {due.isoformat()} (grace {check.grace_s:g} s)",
        )
    return False, ""


def evaluate_checkins(
    checks: Sequence[CheckinRow], state: AlertState, now: datetime, silenced: bool = False
) -> tuple[AlertState, list[Transition]]:
    """One cycle of every check: the new state and the transitions (see the module docstring)."""
    names = {c.name for c in checks}
    subjects = {k: v for k, v in state.subjects.items() if k in names}
    out: list[Transition] = []
    for check in checks:
        before = subjects.get(check.name, SubjectState())
        alerting, why = _verdict(check, now)
        firing = before.status is AlertStatus.FIRING
        if alerting and not firing:
            after = SubjectState(AlertStatus.FIRING, now, None if silenced else now)
            subjects[check.name] = after
            out.append(_transition(check, TransitionKind.FIRING, now, after, why, silenced))
        elif firing and not alerting:
            # nobody was told it fired: its end is not news either
            quiet = silenced or before.last_notified is None
            out.append(_transition(check, TransitionKind.RESOLVED, now, before, "", quiet))
            subjects.pop(check.name, None)
        elif firing and before.last_notified is None and not silenced:
            # it fired during a silence that has ended: tell now
            after = SubjectState(AlertStatus.FIRING, before.since, now)
            subjects[check.name] = after
            out.append(_transition(check, TransitionKind.RENOTIFY, now, after, why, False))
    return AlertState(subjects), out


def _transition(
    check: CheckinRow,
    kind: TransitionKind,
    now: datetime,
    st: SubjectState,
    detail: str,
    silenced: bool,
) -> Transition:
    return Transition(
        CHECKIN_RULE,
        kind,
        check.name,
        "",
        now,
        "warning",
        None,
        None,
        st.since,
        silenced,
        None,
        None,
        detail,
    )


# --- the service ---------------------------------------------------------------------------------


class CheckinStore(Protocol):
    async def create_checkin(
        self,
        name: str,
        slug_hash: bytes,
        every_s: float | None,
        cron: str | None,
        grace_s: float,
        now_us: int,
    ) -> CheckinRow: ...

    async def find_checkin(self, slug_hash: bytes) -> CheckinRow | None: ...

    async def list_checkins(self) -> list[CheckinRow]: ...

    async def record_ping(
        self, checkin_id: int, status: str, message: str | None, now_us: int
    ) -> CheckinRow: ...

    async def delete_checkin(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class NewCheckin:
    """A check just created: ``slug`` is shown once and never stored."""

    row: CheckinRow
    slug: str


def _seconds(value: str | float | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InvalidRequest(f"{what}: {exc}", code="invalid_schedule") from None
    return seconds


class CheckinService:
    def __init__(self, store: CheckinStore, activity: ActivityLog, clock: Clock) -> None:
        self._store = store
        self._activity = activity
        self._clock = clock

    async def create(
        self,
        name: str,
        *,
        every: str | float | None = None,
        cron: str | None = None,
        grace: str | float = "5m",
        actor: str = "cli",
    ) -> NewCheckin:
        if (every is None) == (cron is None):
            raise InvalidRequest("give exactly one of every or cron", code="invalid_schedule")
        every_s = _seconds(every, "every")
        if every_s is not None and every_s < 60:
            raise InvalidRequest("every must be at least 1 minute", code="invalid_schedule")
        if cron is not None:
            CronSchedule.parse(cron)
        grace_s = _seconds(grace, "grace") or 0.0
        if grace_s < 0:
            raise InvalidRequest("grace must not be negative", code="invalid_schedule")
        slug = SLUG_PREFIX + secrets.token_urlsafe(24)
        row = await self._store.create_checkin(
            name, hash_token(slug), every_s, cron, grace_s, to_us(self._clock.now())
        )
        schedule = f"every {every_s:g} s" if every_s is not None else f"cron {cron!r}"
        await self._activity.record(
            "checkin_added",
            f"check-in {name} added ({schedule}, grace {grace_s:g} s)",
            actor=actor,
            data={"name": name, "every_s": every_s, "cron": cron, "grace_s": grace_s},
        )
        return NewCheckin(row, slug)

    async def ping(self, slug: str, ok: bool, message: str | None = None) -> CheckinRow:
        """A job reports: success or failure. Unknown slug → NotFound."""
        if len(slug) > 200:
            raise NotFound("unknown check-in", code="unknown_checkin")
        check = await self._store.find_checkin(hash_token(slug))
        if check is None:
            raise NotFound("unknown check-in", code="unknown_checkin")
        return await self._store.record_ping(
            check.id, "success" if ok else "fail", message, to_us(self._clock.now())
        )

    async def list(self) -> list[CheckinRow]:
        return await self._store.list_checkins()

    async def delete(self, name: str, actor: str = "cli") -> None:
        await self._store.delete_checkin(name)
        await self._activity.record("checkin_removed", f"check-in {name} removed", actor=actor)

    def status(self, check: CheckinRow, now: datetime) -> tuple[datetime | None, bool, str]:
        """(next due, alerting, why) for display."""
        alerting, why = _verdict(check, now)
        return next_due(check), alerting, why
