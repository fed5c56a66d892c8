"""Room: server/services. The alert evaluator: rules from the stores, one cycle every
``alert_interval_s``, state persisted, transitions logged and notified.

One replica evaluates: it holds the lease ``alert-evaluator`` (:class:`LeaseKeeper`); the others
only answer the API from the database. Each cycle (:meth:`AlertService.cycle`):

1. reads the rules document in force (the ``rules`` document in the database: imported from
   ``alert_rules_file`` at start when that file changed, or replaced through the API) plus the
   built-in ``node-offline`` rule, and the active silences;
2. builds the engine's :class:`~beamwarden.fleet.alerts.Inputs`: every stream with the readings
   *received* since the previous cycle (up to ``settle_s`` ago, so in-flight commits are not
   skipped, and stamped at most ``late_s`` before that: an agent's backlog of old readings
   after an outage is not re-judged), each node with its status (:mod:`.registry`), clock
   offset and latest telemetry metrics;
3. evaluates (:func:`~beamwarden.fleet.alerts.evaluate_all`), plus the check-ins
   (:mod:`.checkins`);
4. writes, in ONE transaction, the changed states, the cursor, the learned stream cadences and
   the notifications of the unsilenced transitions (the outbox, :mod:`.notifications`). A
   restart therefore neither re-fires (the state says "notified") nor forgets (the state says
   "firing");
5. writes every transition to the activity log (``alert_firing``, ``alert_resolved``,
   ``alert_renotify``), then sends what the outbox holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from beamwarden.fleet.alerts import (
    AlertState,
    AlertStatus,
    Inputs,
    NodeInfo,
    NodeInput,
    NodeRule,
    RuleError,
    RuleSet,
    Scope,
    Silence,
    StreamInput,
    StreamRule,
    Transition,
    evaluate_all,
    parse_rules,
)
from beamwarden.fleet.leases import Holder
from beamwarden.fleet.staleness import StreamCadence
from beamwarden.protocol import NodeStatus
from beamwarden.server.alert_records import (
    CycleWrite,
    NewSilence,
    Sample,
    SensorInfo,
    SilenceRow,
)
from beamwarden.server.errors import InvalidRequest, StoreUnavailable
from beamwarden.server.records import NodeFilter, from_us, to_us
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.checkins import (
    CHECKIN_RULE,
    CheckinService,
    CheckinStore,
    evaluate_checkins,
)
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.fleet_views import FleetViews
from beamwarden.server.services.leases import LeaseKeeper, LeaseService
from beamwarden.server.services.notifications import NotificationService
from beamwarden.server.services.registry import NodeRegistry

log = logging.getLogger("beamwarden.alerts")

LEASE_NAME = "alert-evaluator"
#: the rule every server has unless turned off (``alert_node_status``): a node went offline
NODE_OFFLINE_RULE = "node-offline"
_KIND = {"firing": "alert_firing", "resolved": "alert_resolved", "renotify": "alert_renotify"}


class AlertStorePort(Protocol):
    """What the evaluator needs from its adapter (``server/store/alerts.py``)."""

    async def load_states(self) -> dict[str, dict[str, Any]]: ...

    async def get_meta(self, name: str) -> Any: ...

    async def put_meta(self, name: str, data: Any, now_us: int) -> None: ...

    async def save_cycle(self, write: CycleWrite) -> None: ...

    async def add_silence(self, new: NewSilence) -> SilenceRow: ...

    async def delete_silence(self, silence_id: int, now_us: int) -> SilenceRow: ...

    async def list_silences(self, active_at_us: int | None = None) -> list[SilenceRow]: ...

    async def sensors(self) -> list[SensorInfo]: ...

    async def new_samples(
        self,
        sensor_list: Sequence[SensorInfo],
        since_ts_us: int,
        after_received_us: int,
        until_received_us: int,
        extra_fields: frozenset[str] = frozenset(),
    ) -> list[Sample]: ...

    async def latest_metrics(self) -> dict[str, dict[str, float]]: ...


@dataclass(frozen=True, slots=True)
class AlertConfig:
    interval_s: float = 30.0
    settle_s: float = 5.0
    late_s: float = 3600.0
    rules_file: Path | None = None
    node_status_rule: bool = True


@dataclass(frozen=True, slots=True)
class FiringAlert:
    rule: str
    subject: str
    node_id: str | None
    sensor_id: str | None
    field: str | None
    severity: str
    since: datetime | None
    value: float | None
    last_notified: datetime | None
    #: fired during a silence or maintenance window: nobody was told yet
    silenced: bool
    #: ``firing``, or ``pending`` (the condition holds, its ``for`` has not passed yet)
    status: str = "firing"


def split_subject(rule: str, subject: str) -> tuple[str | None, str | None, str | None]:
    """(node_id, sensor_id, field) of a subject key (``node/sensor/field``, a node id, a check)."""
    if rule == CHECKIN_RULE:
        return None, None, None
    node, sep, rest = subject.partition("/")
    if not sep:
        return node, None, None
    sensor, _, field = rest.rpartition("/")
    return node, sensor, field


def _silence(row: SilenceRow) -> Silence:
    return Silence(
        name=row.name,
        rules=row.rules,
        scope=Scope.model_validate(row.scope),
        starts=from_us(row.starts_us),
        ends=from_us(row.ends_us),
        comment=row.comment,
    )


#: the nodes alert rules judge: every one not revoked
_LIVE_NODES = NodeFilter(include_revoked=False)


def _builtin_rules() -> RuleSet:
    return parse_rules({"rules": [{"name": NODE_OFFLINE_RULE, "kind": "node_status"}]})


class AlertService:
    def __init__(
        self,
        store: AlertStorePort,
        checkin_store: CheckinStore,
        registry: NodeRegistry,
        activity: ActivityLog,
        leases: LeaseService,
        notifications: NotificationService,
        clock: Clock,
        config: AlertConfig | None = None,
        *,
        fleet: FleetViews,
        holder_id: str | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._fleet = fleet
        self._checkin_store = checkin_store
        self._registry = registry
        self._activity = activity
        self.notifications = notifications
        self.checkins = CheckinService(checkin_store, activity, clock)
        self._clock = clock
        self.config = config or AlertConfig()
        self._sleep = sleep or asyncio.sleep
        hostname = socket.gethostname()
        holder = Holder(holder_id or f"{hostname}:{os.getpid()}:{os.urandom(4).hex()}", hostname)
        interval = timedelta(seconds=self.config.interval_s)
        self.keeper = LeaseKeeper(
            leases,
            LEASE_NAME,
            holder,
            ttl=interval * 3,
            interval=interval,
            on_acquired=self._on_acquired,
        )
        self._states: dict[str, AlertState] = {}
        self._persisted: dict[str, dict[str, Any]] = {}
        self._cursor_us: int | None = None
        self._cadences: dict[str, StreamCadence] = {}
        self._rules_text: str | None = None
        self._ruleset = RuleSet()
        self._loaded = False

    # --- start-up, the lease ---------------------------------------------------------------

    async def start(self) -> None:
        """Import the rules file if it changed since the last import (raises on a bad file)."""
        path = self.config.rules_file
        if path is None:
            return
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        current = await self._store.get_meta("rules")
        if isinstance(current, dict) and current.get("file_sha") == digest:
            return
        try:
            doc = plain_document(tomllib.loads(raw.decode("utf-8")))
            parse_rules(doc, self.notifications.channels())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, RuleError) as exc:
            raise InvalidRequest(f"alert rules file {path}: {exc}", code="invalid_rules") from exc
        now = self._clock.now()
        await self._store.put_meta(
            "rules", {"doc": doc, "source": f"file {path.name}", "file_sha": digest}, to_us(now)
        )
        await self._activity.record(
            "alert_rules_changed",
            f"alert rules loaded from {path} ({len(doc.get('rules', ()))} rules)",
            actor="server",
        )

    async def _on_acquired(self, _lease: Any) -> None:
        self._loaded = False  # another replica may have evaluated meanwhile: reload everything

    async def _load(self) -> None:
        persisted = await self._store.load_states()
        self._persisted = persisted
        self._states = {k: AlertState.from_dict(v) for k, v in persisted.items()}
        cursor = await self._store.get_meta("cursor")
        self._cursor_us = int(cursor["received_us"]) if isinstance(cursor, dict) else None
        cadences = await self._store.get_meta("cadences")
        self._cadences = {
            k: StreamCadence.from_dict(v) for k, v in (cadences or {}).get("streams", {}).items()
        }
        self._loaded = True

    async def step(self) -> list[Transition]:
        """Claim or renew the lease; if held, run one cycle and send what is due."""
        await self.keeper.step()
        if not self.keeper.held:
            return []
        transitions = await self.cycle()
        await self.notifications.safe_deliver()
        return transitions

    async def run(self) -> None:
        """Step every ``interval_s`` until cancelled (first after one interval); release at the end."""
        try:
            while True:
                await self._sleep(self.config.interval_s)
                try:
                    await self.step()
                except StoreUnavailable as exc:
                    log.warning("alert cycle skipped: %s", exc.message)
        finally:
            await asyncio.shield(self.keeper.release())

    # --- rules -----------------------------------------------------------------------------

    async def rules_document(self) -> dict[str, Any]:
        """The rules document in force and where it came from."""
        current = await self._store.get_meta("rules")
        if not isinstance(current, dict):
            return {"document": {}, "source": "none"}
        return {"document": current.get("doc", {}), "source": current.get("source", "")}

    async def replace_rules(self, doc: dict[str, Any], actor: str) -> RuleSet:
        """Validate and store a new rules document. Raises InvalidRequest naming rule and key."""
        doc = plain_document(doc)
        try:
            ruleset = parse_rules(doc, self.notifications.channels())
        except RuleError as exc:
            raise InvalidRequest(str(exc), code="invalid_rules") from None
        now = self._clock.now()
        current = await self._store.get_meta("rules")
        file_sha = current.get("file_sha") if isinstance(current, dict) else None
        await self._store.put_meta(
            "rules", {"doc": doc, "source": "api", "file_sha": file_sha}, to_us(now)
        )
        await self._activity.record(
            "alert_rules_changed",
            f"alert rules replaced ({len(ruleset.rules)} rules)",
            actor=actor,
            data={"rules": [r.name for r in ruleset.rules]},
        )
        return ruleset

    async def ruleset(self) -> RuleSet:
        """The rules in force, with the built-in ones (parsed again only when they change)."""
        current = await self._store.get_meta("rules")
        doc = current.get("doc", {}) if isinstance(current, dict) else {}
        text = json.dumps(doc, sort_keys=True, default=str)
        if text != self._rules_text:
            try:
                parsed = parse_rules(doc)
            except RuleError as exc:  # stored by an older version: keep the last good rules
                log.error("stored alert rules are invalid, keeping the previous ones: %s", exc)
                return self._ruleset
            if self.config.node_status_rule and all(
                r.name != NODE_OFFLINE_RULE for r in parsed.rules
            ):
                parsed = RuleSet(
                    rules=(*parsed.rules, *_builtin_rules().rules),
                    silences=parsed.silences,
                    maintenance=parsed.maintenance,
                )
            self._ruleset, self._rules_text = parsed, text
        return self._ruleset

    # --- silences --------------------------------------------------------------------------

    async def add_silence(self, silence: Silence, actor: str) -> SilenceRow:
        now_us = to_us(self._clock.now())
        row = await self._store.add_silence(
            NewSilence(
                name=silence.name,
                rules=tuple(silence.rules),
                scope=silence.scope.model_dump(exclude_defaults=True),
                starts_us=to_us(silence.starts),
                ends_us=to_us(silence.ends),
                comment=silence.comment,
                created_by=actor,
                created_us=now_us,
            )
        )
        rules = ", ".join(silence.rules) or "every rule"
        await self._activity.record(
            "silence_added",
            f"silence {row.id} ({rules}) until {silence.ends.isoformat()}",
            actor=actor,
            data={"id": row.id, "rules": list(silence.rules), "comment": silence.comment},
        )
        return row

    async def delete_silence(self, silence_id: int, actor: str) -> SilenceRow:
        row = await self._store.delete_silence(silence_id, to_us(self._clock.now()))
        await self._activity.record("silence_removed", f"silence {silence_id} ended", actor=actor)
        return row

    async def silences(self, active_only: bool = True) -> list[SilenceRow]:
        at = to_us(self._clock.now()) if active_only else None
        return await self._store.list_silences(at)

    # --- what is firing --------------------------------------------------------------------

    async def firing(self, *, pending: bool = False) -> list[FiringAlert]:
        """Every firing alert instance (and pending ones if ``pending``), from the database (any
        replica answers)."""
        severities = {r.name: r.severity for r in (await self.ruleset()).rules}
        wanted = {AlertStatus.FIRING, AlertStatus.PENDING} if pending else {AlertStatus.FIRING}
        out: list[FiringAlert] = []
        for rule, data in sorted((await self._store.load_states()).items()):
            for subject, st in sorted(AlertState.from_dict(data).subjects.items()):
                if st.status not in wanted:
                    continue
                node_id, sensor_id, field = split_subject(rule, subject)
                out.append(
                    FiringAlert(
                        rule,
                        subject,
                        node_id,
                        sensor_id,
                        field,
                        severities.get(rule, "warning"),
                        st.since,
                        st.value,
                        st.last_notified,
                        st.last_notified is None,
                        st.status.value,
                    )
                )
        return out

    async def latest_metrics(self) -> dict[str, dict[str, float]]:
        """Each node's numeric telemetry metrics from its latest heartbeat (this process's fresh
        heartbeats first, else the database's)."""
        metrics = await self._store.latest_metrics()
        for node_id, beat in self._registry.last_seen.items():
            metrics[node_id] = {
                k: float(v) for k, v in beat.metrics.items() if not isinstance(v, bool)
            }
        return metrics

    # --- one cycle -------------------------------------------------------------------------

    async def _nodes(self) -> tuple[dict[str, NodeInfo], list[NodeInput]]:
        metrics = await self.latest_metrics()
        infos: dict[str, NodeInfo] = {}
        inputs: list[NodeInput] = []
        cursor: str | None = None
        while True:  # the fleet listing's fast path: 10 000 nodes every cycle
            page = await self._fleet.page(_LIVE_NODES, limit=1000, cursor=cursor)
            for node in page.items:
                info = NodeInfo(node.node_id, node.role, node.site or "", node.room or "")
                infos[node.node_id] = info
                if node.status is NodeStatus.UNKNOWN:
                    continue  # never heartbeated: nothing to judge
                inputs.append(
                    NodeInput(
                        info, node.status, node.clock_offset_seconds, metrics.get(node.node_id, {})
                    )
                )
            if page.next_cursor is None:
                return infos, inputs
            cursor = page.next_cursor

    def _streams(
        self,
        sensors: list[SensorInfo],
        samples: list[Sample],
        infos: dict[str, NodeInfo],
        wanted: frozenset[str] = frozenset(),
    ) -> tuple[list[StreamInput], bool]:
        by_stream: dict[tuple[int, str], list[tuple[datetime, float]]] = {}
        for sample in samples:
            at = from_us(sample.ts_us)
            for name, value in sample.values.items():
                by_stream.setdefault((sample.sensor_ref, name), []).append((at, value))
        changed = False
        streams: list[StreamInput] = []
        for sensor in sensors:
            node = infos.get(sensor.node_id)
            if node is None:
                continue  # revoked, or a fleet-wide sensor never heard
            names = list(sensor.fields)
            if sensor.overflow:  # fields beyond the slots: those it was seen sending
                for name in sorted(wanted.difference(names)):
                    key = f"{sensor.node_id}/{sensor.sensor_id}/{name}"
                    if (sensor.ref, name) in by_stream or key in self._cadences:
                        names.append(name)
            for name in names:
                key = f"{sensor.node_id}/{sensor.sensor_id}/{name}"
                cadence = self._cadences.get(key, StreamCadence())
                got = by_stream.get((sensor.ref, name), [])
                for at, _ in got:
                    cadence = cadence.observe(at)
                if got:
                    self._cadences[key] = cadence
                    changed = True
                last_seen = cadence.last_seen
                if last_seen is None and sensor.last_ts_us is not None:
                    last_seen = from_us(sensor.last_ts_us)
                streams.append(
                    StreamInput(
                        node,
                        sensor.sensor_id,
                        sensor.sensor_type,
                        name,
                        tuple(got),
                        last_seen,
                        cadence.expected_interval() if len(cadence.gaps) >= 3 else None,
                    )
                )
        return streams, changed

    async def cycle(self) -> list[Transition]:
        """One evaluation (see the module docstring); the transitions, oldest first."""
        if not self._loaded:
            await self._load()
        now = self._clock.now()
        now_us = to_us(now)
        until_us = now_us - int(self.config.settle_s * 1_000_000)
        after_us = self._cursor_us
        if after_us is None:
            after_us = until_us - int(self.config.interval_s * 1_000_000)
        ruleset = await self.ruleset()
        rows = await self._store.list_silences(now_us)
        silences = [*ruleset.silences, *(_silence(r) for r in rows)]
        sensors = await self._store.sensors()
        # fields rules name: a sensor with all slots taken has them only in the payload
        wanted = frozenset(f for r in ruleset.rules if (f := getattr(r, "field", None)))
        samples: list[Sample] = []
        if until_us > after_us:
            since_ts = after_us - int(self.config.late_s * 1_000_000)
            samples = await self._store.new_samples(sensors, since_ts, after_us, until_us, wanted)
        infos, node_inputs = await self._nodes()
        streams, cadences_changed = self._streams(sensors, samples, infos, wanted)
        inputs = Inputs(streams, node_inputs, silences, ruleset.maintenance)
        rules: list[StreamRule | NodeRule] = list(ruleset.rules)
        states, transitions = evaluate_all(rules, self._states, inputs, now)
        checkin_silenced = any(
            s.active(now) and (not s.rules or CHECKIN_RULE in s.rules) and s.scope == Scope()
            for s in silences
        )
        checks = await self._checkin_store.list_checkins()
        if checks or CHECKIN_RULE in self._states:
            states[CHECKIN_RULE], checked = evaluate_checkins(
                checks, self._states.get(CHECKIN_RULE, AlertState()), now, checkin_silenced
            )
            transitions.extend(checked)
        write = CycleWrite(now_us)
        persisted = dict(self._persisted)
        for name, state in states.items():
            data = state.to_dict()
            if not state.subjects:
                if name in persisted:
                    write.states[name] = None
                    del persisted[name]
            elif persisted.get(name) != data:
                write.states[name] = data
                persisted[name] = data
        for name in [n for n in persisted if n not in states]:  # a rule that was removed
            write.states[name] = None
            del persisted[name]
        write.meta["cursor"] = {"received_us": max(until_us, after_us)}
        if cadences_changed:
            write.meta["cadences"] = {
                "streams": {k: c.to_dict() for k, c in self._cadences.items()}
            }
        write.outbox.extend(self.notifications.messages(transitions, now))
        await self._store.save_cycle(write)
        self._states = {k: v for k, v in states.items() if v.subjects}
        self._persisted = persisted
        self._cursor_us = max(until_us, after_us)
        await self._log(transitions)
        return transitions

    async def _log(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            where = t.subject if t.sensor_id is None else f"{t.sensor_id}/{t.field} on {t.node_id}"
            value = "" if t.value is None else f" value {t.value:g}"
            line = "" if t.threshold is None else f" (threshold {t.threshold:g})"
            quiet = " [silenced]" if t.silenced else ""
            try:
                await self._activity.record(
                    _KIND[t.kind.value],
                    f"alert {t.rule} {t.kind.value} for {where}{value}{line}{quiet}",
                    node_id=t.node_id or None,
                    actor="alerts",
                    data={
                        "rule": t.rule,
                        "subject": t.subject,
                        "severity": t.severity,
                        "value": t.value,
                        "threshold": t.threshold,
                        "since": None if t.since is None else t.since.isoformat(),
                        "silenced": t.silenced,
                        "detail": t.detail,
                    },
                )
            except StoreUnavailable as exc:  # the state is saved; only the log line is lost
                log.warning("cannot log alert transition: %s", exc.message)


def plain_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A rules document as JSON can store it: TOML's dates and times (a maintenance window's
    ``start = 02:00:00``) become ISO text, which the rules' models read back as the same times."""
    plain: dict[str, Any] = json.loads(json.dumps(doc, default=_iso_text))
    return plain


def _iso_text(value: Any) -> str:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
