"""Room: server/services. Notifications: templates, the outbox, per-channel rate limits, retries.

Alert transitions become messages here (one per channel) and are written to the outbox *in the
same transaction* as the alert state that caused them (:mod:`.alerts`), so a crash between the
two can neither lose a notification nor send one twice for one transition. :meth:`deliver_due`
then sends what is due through a :class:`Sender` (``server/notify``: apprise), one channel at a
time:

* a channel over its rate (``rate_per_minute``) keeps the message pending for later: delayed,
  never dropped;
* a failed send is retried with exponential backoff (``retry_base_s`` doubling, at most an
  hour) and each attempt's error recorded; after ``max_attempts`` the message is ``failed``.

:meth:`send_test` sends a test message to every channel (or one) at once, outside the outbox.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from beamwarden.fleet.alerts import Transition, TransitionKind
from beamwarden.protocol import NodeStatus
from beamwarden.server.alert_records import NewNotification, NotificationRow
from beamwarden.server.errors import NotFound, StoreUnavailable
from beamwarden.server.records import to_us
from beamwarden.server.services.clock import Clock

log = logging.getLogger("beamwarden.notifications")

#: a longest pause between two attempts of one message
MAX_BACKOFF_S = 3600.0

#: the details a node_status rule gives (the node's status)
_NODE_STATUSES = frozenset(s.value for s in NodeStatus)

DEFAULT_TITLE = "[{status}] {rule}: {subject}"
DEFAULT_BODY = (
    "{headline}\n"
    "rule: {rule} ({severity})\n"
    "node: {node_id}{sensor}\n"
    "value: {value} (threshold {threshold})\n"
    "since: {since}\n"
    "{link}"
)


class Sender(Protocol):
    """What a notifier adapter (``server/notify``) provides."""

    def channels(self) -> list[str]:
        """The names of the configured channels."""
        ...

    async def send(self, channel: str, title: str, body: str) -> str | None:
        """Send one message; ``None`` when it was accepted, else the error in words."""
        ...


class OutboxStore(Protocol):
    async def due_notifications(self, now_us: int, limit: int = 100) -> list[NotificationRow]: ...

    async def update_notification(
        self,
        notification_id: int,
        *,
        status: str,
        attempts: int,
        next_attempt_us: int,
        sent_us: int | None = None,
        error: str | None = None,
    ) -> None: ...

    async def list_notifications(
        self, limit: int, before_id: int | None = None
    ) -> list[NotificationRow]: ...


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    rate_per_minute: int = 30
    max_attempts: int = 6
    retry_base_s: float = 30.0
    link_base: str = ""
    title_template: str = DEFAULT_TITLE
    body_template: str = DEFAULT_BODY


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one :meth:`NotificationService.deliver_due` did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    delayed: int = 0


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _headline(t: Transition) -> str:
    who = t.subject if t.sensor_id is None else f"{t.sensor_id}/{t.field} on {t.node_id}"
    if t.rule == "checkin":
        verbs = {
            TransitionKind.FIRING: "is late or failed",
            TransitionKind.RESOLVED: "checked in again",
            TransitionKind.RENOTIFY: "is still late or failing",
        }
        return f"check-in {t.subject} {verbs[t.kind]}" + (f": {t.detail}" if t.detail else "")
    if t.field is None and t.threshold is None and t.detail in _NODE_STATUSES:
        if t.kind is TransitionKind.RESOLVED:
            return f"node {t.node_id} is back online"
        return f"node {t.node_id} is {t.detail}"
    verbs = {
        TransitionKind.FIRING: "fired",
        TransitionKind.RESOLVED: "resolved",
        TransitionKind.RENOTIFY: "still firing",
    }
    detail = f" ({t.detail})" if t.detail else ""
    return f"{t.rule} {verbs[t.kind]} for {who}{detail}"


def template_fields(t: Transition, link_base: str) -> dict[str, Any]:
    """The names a template may use: rule, status, subject, node_id, sensor_id, field, value,
    threshold, severity, since, at, detail, headline, link, sensor."""
    link = ""
    if link_base:
        base = link_base.rstrip("/")
        link = f"{base}/checkins" if t.rule == "checkin" else f"{base}/nodes/{t.node_id}"
    status = {"firing": "FIRING", "resolved": "RESOLVED", "renotify": "STILL FIRING"}[t.kind]
    return {
        "rule": t.rule,
        "status": status,
        "kind": t.kind.value,
        "subject": t.subject,
        "node_id": t.node_id,
        "sensor_id": t.sensor_id or "",
        "field": t.field or "",
        "sensor": "" if t.sensor_id is None else f", sensor {t.sensor_id} field {t.field}",
        "value": _number(t.value),
        "threshold": _number(t.threshold),
        "severity": t.severity,
        "since": "—" if t.since is None else t.since.isoformat(),
        "at": t.at.isoformat(),
        "detail": t.detail,
        "headline": _headline(t),
        "link": link,
    }


def render(template: str, fields: dict[str, Any]) -> str:
    """``str.format`` with the template fields; an unknown name is left as written."""

    class _Keep(dict[str, Any]):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    try:
        return template.format_map(_Keep(fields)).strip()
    except (ValueError, IndexError, AttributeError):  # a malformed template: say so, send anyway
        return f"(template error) {fields['headline']}"


class NotificationService:
    def __init__(
        self, outbox: OutboxStore, sender: Sender, clock: Clock, config: NotifyConfig | None = None
    ) -> None:
        self._outbox = outbox
        self._sender = sender
        self._clock = clock
        self.config = config or NotifyConfig()
        self._sent_at: dict[str, deque[datetime]] = {}

    def channels(self) -> list[str]:
        return self._sender.channels()

    def messages(self, transitions: Sequence[Transition], now: datetime) -> list[NewNotification]:
        """The outbox rows for the unsilenced transitions: one per transition and channel it
        goes to (the rule's ``notify``, else every channel). A channel a rule names but that is
        no longer configured still gets its row, which :meth:`deliver_due` marks failed with the
        reason: nothing is dropped silently."""
        out: list[NewNotification] = []
        channels = self._sender.channels()
        for t in transitions:
            if t.silenced:
                continue
            fields = template_fields(t, self.config.link_base)
            title = render(self.config.title_template, fields)
            body = render(self.config.body_template, fields)
            for channel in dict.fromkeys(t.notify) if t.notify else channels:
                out.append(
                    NewNotification(
                        to_us(now), channel, t.rule, t.subject, t.kind.value, title, body
                    )
                )
        return out

    def _room(self, channel: str, now: datetime) -> float:
        """Seconds until ``channel`` may send again (0: now)."""
        window = self._sent_at.setdefault(channel, deque())
        while window and (now - window[0]).total_seconds() >= 60.0:
            window.popleft()
        if len(window) < self.config.rate_per_minute:
            return 0.0
        return 60.0 - (now - window[0]).total_seconds()

    def backoff_s(self, attempts: int) -> float:
        """The pause after the ``attempts``-th failed attempt."""
        return min(self.config.retry_base_s * 2.0 ** (attempts - 1), MAX_BACKOFF_S)

    async def deliver_due(self, limit: int = 100) -> Delivery:
        """Send what is due; see the module docstring."""
        now = self._clock.now()
        now_us = to_us(now)
        sent = retried = failed = delayed = 0
        known = set(self._sender.channels())
        for row in await self._outbox.due_notifications(now_us, limit):
            if row.channel not in known:
                await self._outbox.update_notification(
                    row.id,
                    status="failed",
                    attempts=row.attempts,
                    next_attempt_us=now_us,
                    error=f"channel {row.channel!r} is no longer configured",
                )
                failed += 1
                continue
            wait = self._room(row.channel, now)
            if wait > 0:
                await self._outbox.update_notification(
                    row.id,
                    status="pending",
                    attempts=row.attempts,
                    next_attempt_us=now_us + int(wait * 1_000_000),
                    error=row.error,
                )
                delayed += 1
                continue
            self._sent_at[row.channel].append(now)
            error = await self._sender.send(row.channel, row.title, row.body)
            attempts = row.attempts + 1
            if error is None:
                await self._outbox.update_notification(
                    row.id, status="sent", attempts=attempts, next_attempt_us=now_us, sent_us=now_us
                )
                sent += 1
            elif attempts >= self.config.max_attempts:
                log.warning("notification %d to %s failed for good: %s", row.id, row.channel, error)
                await self._outbox.update_notification(
                    row.id, status="failed", attempts=attempts, next_attempt_us=now_us, error=error
                )
                failed += 1
            else:
                pause = self.backoff_s(attempts)
                await self._outbox.update_notification(
                    row.id,
                    status="pending",
                    attempts=attempts,
                    next_attempt_us=now_us + int(pause * 1_000_000),
                    error=error,
                )
                retried += 1
        return Delivery(sent, retried, failed, delayed)

    async def send_test(self, channel: str | None = None) -> dict[str, str | None]:
        """Send a test message now; per channel, ``None`` (accepted) or the error."""
        channels = self._sender.channels()
        if channel is not None:
            if channel not in channels:
                raise NotFound(f"no notification channel {channel!r}", code="unknown_channel")
            channels = [channel]
        now = self._clock.now().isoformat()
        results: dict[str, str | None] = {}
        for name in channels:
            results[name] = await self._sender.send(
                name, "Beamwarden test notification", f"A test from Beamwarden at {now}."
            )
        return results

    async def recent(self, limit: int, before_id: int | None = None) -> list[NotificationRow]:
        return await self._outbox.list_notifications(limit, before_id)

    async def safe_deliver(self) -> Delivery:
        """:meth:`deliver_due`, logging (not raising) a database outage."""
        try:
            return await self.deliver_due()
        except StoreUnavailable as exc:
            log.warning("cannot deliver notifications: %s", exc.message)
            return Delivery()
