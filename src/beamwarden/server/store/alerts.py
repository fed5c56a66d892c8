"""Room: server/store (adapter). :class:`AlertStore`: alert state, silences, check-ins, the
notification outbox and the evaluator's view of readings and telemetry, on SQLite and PostgreSQL.

Imports SQLAlchemy, :mod:`beamwarden.server.alert_records` and :mod:`beamwarden.server.errors`;
never services. Built by the app from the ``SqlStore``'s engine (``AlertStore(store.engine,
query_timeout)``). Every method runs under the query timeout and maps driver failures to
:class:`~beamwarden.server.errors.StoreUnavailable` (:mod:`.failures`), like ``SqlStore``.

New readings are found by *receive* time, bounded by their own timestamp so the primary key
``(sensor_ref, ts_us, id)`` serves the query: ``sensor_ref IN (…) AND ts_us >= since AND
received_us IN (after, until]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from beamwarden.server.alert_records import (
    CheckinRow,
    CycleWrite,
    NewSilence,
    NotificationRow,
    Sample,
    SensorInfo,
    SilenceRow,
)
from beamwarden.server.errors import AlreadyExists, NotFound

from .adapter import EngineAdapter
from .failures import is_unique_violation
from .ingest import decode_fields
from .layout import SLOTS
from .schema import (
    alert_meta,
    alert_states,
    checkins,
    nodes,
    notifications,
    readings,
    sensors,
    silences,
    telemetry,
)

__all__ = ["AlertStore"]

#: sensor refs per ``IN (…)`` (both drivers accept far more parameters; this keeps plans simple)
_REFS_PER_QUERY = 2000
_R = readings.c


class AlertStore(EngineAdapter):
    """The port ``services.alerts.AlertStorePort`` (and the check-in and notification ports)."""

    # -- alert state and documents ----------------------------------------------------------

    async def load_states(self) -> dict[str, dict[str, Any]]:
        """Every rule's persisted ``AlertState.to_dict()``."""
        async with self._read() as conn:
            rows = await conn.execute(select(alert_states.c.rule, alert_states.c.state))
            return {row.rule: dict(row.state) for row in rows}

    async def get_meta(self, name: str) -> Any:
        """An evaluator document, or ``None``."""
        async with self._read() as conn:
            stmt = select(alert_meta.c.data).where(alert_meta.c.name == name)
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def put_meta(self, name: str, data: Any, now_us: int) -> None:
        async with self._write() as conn:
            await _upsert(conn, alert_meta, "name", name, {"data": data, "updated_us": now_us})

    async def save_cycle(self, write: CycleWrite) -> None:
        """States, documents and outbox of one cycle, in one transaction."""
        async with self._write() as conn:
            for rule, state in write.states.items():
                if state is None:
                    await conn.execute(delete(alert_states).where(alert_states.c.rule == rule))
                else:
                    values = {"state": state, "updated_us": write.now_us}
                    await _upsert(conn, alert_states, "rule", rule, values)
            for name, data in write.meta.items():
                await _upsert(
                    conn, alert_meta, "name", name, {"data": data, "updated_us": write.now_us}
                )
            if write.outbox:
                await conn.execute(
                    notifications.insert(),
                    [
                        {
                            "created_us": n.created_us,
                            "channel": n.channel,
                            "rule": n.rule,
                            "subject": n.subject,
                            "kind": n.kind,
                            "title": n.title,
                            "body": n.body,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_us": n.created_us,
                        }
                        for n in write.outbox
                    ],
                )

    # -- silences ---------------------------------------------------------------------------

    async def add_silence(self, new: NewSilence) -> SilenceRow:
        stmt = (
            silences.insert()
            .values(
                name=new.name,
                rules=list(new.rules),
                scope=new.scope,
                starts_us=new.starts_us,
                ends_us=new.ends_us,
                comment=new.comment,
                created_by=new.created_by,
                created_us=new.created_us,
            )
            .returning(*silences.c)
        )
        async with self._write() as conn:
            return _silence((await conn.execute(stmt)).one())

    async def delete_silence(self, silence_id: int, now_us: int) -> SilenceRow:
        """End a silence (kept, marked deleted). Raises NotFound."""
        stmt = (
            update(silences)
            .where(silences.c.id == silence_id, silences.c.deleted_us.is_(None))
            .values(deleted_us=now_us)
            .returning(*silences.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"no silence {silence_id}", code="unknown_silence")
        return _silence(row)

    async def list_silences(self, active_at_us: int | None = None) -> list[SilenceRow]:
        """Silences not deleted; with ``active_at_us`` only those not yet ended then."""
        stmt = select(silences).where(silences.c.deleted_us.is_(None)).order_by(silences.c.id)
        if active_at_us is not None:
            stmt = stmt.where(silences.c.ends_us > active_at_us)
        async with self._read() as conn:
            return [_silence(row) for row in await conn.execute(stmt)]

    # -- check-ins --------------------------------------------------------------------------

    async def create_checkin(
        self,
        name: str,
        slug_hash: bytes,
        every_s: float | None,
        cron: str | None,
        grace_s: float,
        now_us: int,
    ) -> CheckinRow:
        """Raises AlreadyExists if the name is taken."""
        stmt = (
            checkins.insert()
            .values(
                name=name,
                slug_hash=slug_hash,
                every_s=every_s,
                cron=cron,
                grace_s=grace_s,
                created_us=now_us,
            )
            .returning(*checkins.c)
        )
        try:
            async with self._write() as conn:
                row = (await conn.execute(stmt)).one()
        except Exception as exc:
            if is_unique_violation(exc) or is_unique_violation(exc.__cause__ or exc):
                raise AlreadyExists(f"a check-in is already called {name!r}") from None
            raise
        return _checkin(row)

    async def find_checkin(self, slug_hash: bytes) -> CheckinRow | None:
        async with self._read() as conn:
            stmt = select(checkins).where(checkins.c.slug_hash == slug_hash)
            row = (await conn.execute(stmt)).first()
        return None if row is None else _checkin(row)

    async def list_checkins(self) -> list[CheckinRow]:
        async with self._read() as conn:
            return [
                _checkin(r) for r in await conn.execute(select(checkins).order_by(checkins.c.name))
            ]

    async def record_ping(
        self, checkin_id: int, status: str, message: str | None, now_us: int
    ) -> CheckinRow:
        stmt = (
            update(checkins)
            .where(checkins.c.id == checkin_id)
            .values(last_ping_us=now_us, last_status=status, last_message=message)
            .returning(*checkins.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"no check-in {checkin_id}")
        return _checkin(row)

    async def delete_checkin(self, name: str) -> None:
        async with self._write() as conn:
            result = await conn.execute(delete(checkins).where(checkins.c.name == name))
        if result.rowcount == 0:
            raise NotFound(f"no check-in {name!r}", code="unknown_checkin")

    # -- notifications ----------------------------------------------------------------------

    async def due_notifications(self, now_us: int, limit: int = 100) -> list[NotificationRow]:
        """Pending notifications whose next attempt is due, oldest first."""
        n = notifications.c
        stmt = (
            select(notifications)
            .where(n.status == "pending", n.next_attempt_us <= now_us)
            .order_by(n.next_attempt_us, n.id)
            .limit(limit)
        )
        async with self._read() as conn:
            return [_notification(r) for r in await conn.execute(stmt)]

    async def update_notification(
        self,
        notification_id: int,
        *,
        status: str,
        attempts: int,
        next_attempt_us: int,
        sent_us: int | None = None,
        error: str | None = None,
    ) -> None:
        stmt = (
            update(notifications)
            .where(notifications.c.id == notification_id)
            .values(
                status=status,
                attempts=attempts,
                next_attempt_us=next_attempt_us,
                sent_us=sent_us,
                error=error,
            )
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def list_notifications(
        self, limit: int, before_id: int | None = None
    ) -> list[NotificationRow]:
        """Newest first."""
        stmt = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if before_id is not None:
            stmt = stmt.where(notifications.c.id < before_id)
        async with self._read() as conn:
            return [_notification(r) for r in await conn.execute(stmt)]

    # -- what the evaluator reads -----------------------------------------------------------

    async def sensors(self) -> list[SensorInfo]:
        """Every sensor with its slotted (numeric) fields and its last reading's time and node."""
        last = (
            select(_R.ts_us)
            .where(_R.sensor_ref == sensors.c.id)
            .order_by(_R.ts_us.desc())
            .limit(1)
            .scalar_subquery()
        )
        last_node = (
            select(nodes.c.node_id)
            .where(
                nodes.c.id
                == select(_R.node_ref)
                .where(_R.sensor_ref == sensors.c.id)
                .order_by(_R.ts_us.desc())
                .limit(1)
                .scalar_subquery()
            )
            .scalar_subquery()
        )
        s = sensors.c
        stmt = select(
            s.id, s.owner, s.sensor_id, s.sensor_type, s.fields, last.label("last"), last_node
        ).order_by(s.id)
        async with self._read() as conn:
            out = []
            for row in await conn.execute(stmt):
                slots = decode_fields(row.fields)
                fields = tuple(sorted(slots, key=slots.__getitem__))
                node_id = row.owner or (row[6] or "")
                out.append(
                    SensorInfo(
                        row.id,
                        node_id,
                        row.sensor_id,
                        row.sensor_type,
                        fields,
                        row.last,
                        overflow=len(fields) >= SLOTS,
                    )
                )
            return out

    async def new_samples(
        self,
        sensor_list: Sequence[SensorInfo],
        since_ts_us: int,
        after_received_us: int,
        until_received_us: int,
        extra_fields: frozenset[str] = frozenset(),
    ) -> list[Sample]:
        """Readings received in ``(after, until]`` stamped at or after ``since_ts_us``, in
        ``(ts_us, id)`` order, with their slotted numbers by field name.

        A sensor whose eight slots are taken keeps its further numeric fields only in the
        payload: for such sensors the numbers of ``extra_fields`` (the fields rules name) are
        read from the payload too (their readings' payloads are fetched and decoded; others'
        are not)."""
        if not sensor_list:
            return []
        by_ref = {s.ref: s for s in sensor_list}
        full = {
            s.ref: tuple(extra_fields.difference(s.fields))
            for s in sensor_list
            if s.overflow and extra_fields.difference(s.fields)
        }
        out = await self._samples(
            by_ref,
            [r for r in by_ref if r not in full],
            {},
            since_ts_us,
            after_received_us,
            until_received_us,
        )
        if full:
            out += await self._samples(
                by_ref, list(full), full, since_ts_us, after_received_us, until_received_us
            )
            out.sort(key=lambda s: s.ts_us)
        return out

    async def _samples(
        self,
        by_ref: dict[int, SensorInfo],
        refs: list[int],
        from_payload: dict[int, tuple[str, ...]],
        since_ts_us: int,
        after_received_us: int,
        until_received_us: int,
    ) -> list[Sample]:
        if not refs:
            return []
        payload = (_R.payload,) if from_payload else ()
        stmt = (
            select(
                _R.sensor_ref,
                _R.node_ref,
                _R.ts_us,
                *(_R[f"v{i}"] for i in range(SLOTS)),
                *payload,
            )
            .where(
                _R.sensor_ref.in_(bindparam("refs", expanding=True)),
                _R.ts_us >= since_ts_us,
                _R.received_us > after_received_us,
                _R.received_us <= until_received_us,
            )
            .order_by(_R.ts_us, _R.id)
        )
        out: list[Sample] = []
        async with self._read() as conn:
            node_names = {
                row.id: row.node_id
                for row in await conn.execute(select(nodes.c.id, nodes.c.node_id))
            }
            for start in range(0, len(refs), _REFS_PER_QUERY):
                chunk = refs[start : start + _REFS_PER_QUERY]
                for row in await conn.execute(stmt, {"refs": chunk}):
                    info = by_ref[row.sensor_ref]
                    values = {
                        name: float(v)
                        for name, v in zip(info.fields, row[3 : 3 + len(info.fields)], strict=False)
                        if v is not None
                    }
                    if from_payload:
                        values.update(_numbers(row.payload, from_payload[row.sensor_ref]))
                    out.append(
                        Sample(row.sensor_ref, node_names.get(row.node_ref, ""), row.ts_us, values)
                    )
        if len(refs) > _REFS_PER_QUERY:
            out.sort(key=lambda s: s.ts_us)
        return out

    async def latest_metrics(self) -> dict[str, dict[str, float]]:
        """Each node's numeric telemetry metrics from its latest heartbeat."""
        t = telemetry.c
        latest = (
            select(t.metrics)
            .where(t.node_ref == nodes.c.id)
            .order_by(t.received_us.desc())
            .limit(1)
            .scalar_subquery()
        )
        stmt = select(nodes.c.node_id, latest.label("metrics")).where(
            nodes.c.last_heartbeat_us.is_not(None)
        )
        async with self._read() as conn:
            out: dict[str, dict[str, float]] = {}
            for row in await conn.execute(stmt):
                metrics = row.metrics or {}
                out[row.node_id] = {
                    k: float(v)
                    for k, v in metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                }
            return out

    async def count_notifications(self, status: str) -> int:
        async with self._read() as conn:
            stmt = (
                select(func.count())
                .select_from(notifications)
                .where(notifications.c.status == status)
            )
            return int((await conn.execute(stmt)).scalar_one())


async def _upsert(
    conn: AsyncConnection, table: Any, key: str, value: Any, values: dict[str, Any]
) -> None:
    """Update the row keyed ``key = value`` or insert it (portable: both databases)."""
    result = await conn.execute(update(table).where(table.c[key] == value).values(**values))
    if result.rowcount == 0:
        await conn.execute(table.insert().values(**{key: value, **values}))


def _silence(row: Any) -> SilenceRow:
    return SilenceRow(
        id=row.id,
        name=row.name,
        rules=tuple(row.rules or ()),
        scope=dict(row.scope or {}),
        starts_us=row.starts_us,
        ends_us=row.ends_us,
        comment=row.comment,
        created_by=row.created_by,
        created_us=row.created_us,
        deleted_us=row.deleted_us,
    )


def _checkin(row: Any) -> CheckinRow:
    return CheckinRow(
        id=row.id,
        name=row.name,
        every_s=row.every_s,
        cron=row.cron,
        grace_s=row.grace_s,
        created_us=row.created_us,
        last_ping_us=row.last_ping_us,
        last_status=row.last_status,
        last_message=row.last_message,
    )


def _notification(row: Any) -> NotificationRow:
    return NotificationRow(
        id=row.id,
        created_us=row.created_us,
        channel=row.channel,
        rule=row.rule,
        subject=row.subject,
        kind=row.kind,
        title=row.title,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        next_attempt_us=row.next_attempt_us,
        sent_us=row.sent_us,
        error=row.error,
    )


def _numbers(payload: str, names: tuple[str, ...]) -> dict[str, float]:
    """The finite numbers (not booleans) of ``names`` in a reading's JSON payload."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return {}
    out = {}
    if isinstance(doc, dict):
        for name in names:
            v = doc.get(name)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[name] = float(v)
    return out
