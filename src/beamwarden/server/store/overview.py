"""Room: server/store (adapter). What the dashboard reads besides reading series: a node's heartbeat
metrics in time buckets, its heartbeat times, its newest metrics, and each sensor's newest reading.

Imports SQLAlchemy, :mod:`.schema`, :mod:`.ingest` and ``server.records``; never services. The
functions take an open connection; :class:`~.sql_store.SqlStore` calls them inside its guard
(timeout, driver failures mapped).

Telemetry rows are found through ``ix_telemetry_node_ref_received_us``: every query here is a range
of one node's rows by the server's receive time. A metric is a key of the ``metrics`` JSON; only
numbers count (``push_ok: true`` is not a point of a chart).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Select,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from beamwarden.protocol.vocabulary import FIELD_NAME_RE
from beamwarden.server.records import SensorLatest, SeriesRow, TelemetryQuery

from .ingest import decode_fields
from .schema import nodes, readings, sensors, telemetry

_T = telemetry.c
_R = readings.c
_decode = msgspec.json.Decoder().decode
#: the aggregates a bucketed series may ask for (readings and telemetry alike)
AGGREGATE: dict[str, Callable[[ColumnElement[Any]], ColumnElement[Any]]] = {
    "avg": func.avg,
    "min": func.min,
    "max": func.max,
    "count": func.count,
    "sum": func.sum,
}


def bucketed(inner: Subquery, aggregates: Sequence[str], limit: int) -> Select[Any]:
    """``aggregates`` of ``inner.c.v`` per bucket ``inner.c.b`` (nulls left out), oldest first."""
    v = inner.c.v
    return (
        select(inner.c.b, *(AGGREGATE[a](v).label(a) for a in aggregates))
        .where(v.is_not(None))
        .group_by(inner.c.b)
        .order_by(inner.c.b)
        .limit(limit)
    )


def metric_number(dialect: str, metric: str) -> ColumnElement[Any]:
    """The heartbeat's ``metrics[metric]`` as a number; NULL when missing or not a number."""
    if dialect == "sqlite":
        path = f"$.{metric}"
        return case(
            (
                func.json_type(_T.metrics, path).in_(("integer", "real")),
                func.json_extract(_T.metrics, path),
            ),
            else_=None,
        )
    doc = cast(_T.metrics, JSONB)
    return case(
        (func.jsonb_typeof(doc.op("->")(metric)) == "number", cast(doc.op("->>")(metric), Double)),
        else_=None,
    )


async def telemetry_series(
    conn: AsyncConnection, dialect: str, node_ref: int, query: TelemetryQuery
) -> list[SeriesRow]:
    """Buckets ``[since, until)`` of one metric, oldest first; buckets start at multiples of
    ``bucket_us`` since the epoch. A bucket without a number is left out."""
    bucket = query.bucket_us
    if (
        bucket <= 0
        or query.limit <= 0
        or query.since_us >= query.until_us
        or not query.aggregates
        or any(a not in AGGREGATE for a in query.aggregates)
        or FIELD_NAME_RE.fullmatch(query.metric) is None
    ):
        return []
    origin = query.since_us - query.since_us % bucket
    inner = (
        select(
            ((_T.received_us - literal(origin, BigInteger)) // literal(bucket, BigInteger)).label(
                "b"
            ),
            metric_number(dialect, query.metric).label("v"),
        )
        .where(
            _T.node_ref == node_ref,
            _T.received_us >= query.since_us,
            _T.received_us < query.until_us,
        )
        .subquery()
    )
    stmt = bucketed(inner, query.aggregates, query.limit)
    out = []
    for row in await conn.execute(stmt):
        values: dict[str, float | int | None] = {}
        for name, x in zip(query.aggregates, row[1:], strict=True):
            values[name] = None if x is None else int(x) if name == "count" else float(x)
        out.append(SeriesRow(origin + int(row[0]) * bucket, values))
    return out


async def heartbeat_times(
    conn: AsyncConnection, node_ref: int, since_us: int, until_us: int, limit: int
) -> list[int]:
    """The receive times of the node's heartbeats in ``[since, until)``, oldest first (the newest
    ``limit`` of them when there are more)."""
    stmt = (
        select(_T.received_us)
        .where(_T.node_ref == node_ref, _T.received_us >= since_us, _T.received_us < until_us)
        .order_by(_T.received_us.desc())
        .limit(limit)
    )
    return sorted(int(r[0]) for r in await conn.execute(stmt))


async def latest_metrics(conn: AsyncConnection, node_ref: int) -> dict[str, Any] | None:
    """The metrics of the node's newest heartbeat (``None`` before any)."""
    stmt = (
        select(_T.metrics).where(_T.node_ref == node_ref).order_by(_T.received_us.desc()).limit(1)
    )
    value = (await conn.execute(stmt)).scalar_one_or_none()
    if value is None:
        return None
    if isinstance(value, str | bytes):
        value = _decode(value)
    return dict(value)


async def sensors_latest(
    conn: AsyncConnection, owner: str | None, limit: int
) -> list[SensorLatest]:
    """Sensors (of one owner — a node id, or '' for fleet-wide ids — or all), ordered by owner
    and sensor id, each with its newest reading. The newest reading is found by the primary key
    ``(sensor_ref, ts_us, id)``: one index probe per sensor."""
    s = sensors.c
    chosen = select(s.id, s.owner, s.sensor_id, s.sensor_type, s.fields)
    if owner is not None:
        chosen = chosen.where(s.owner == owner)
    listed = chosen.order_by(s.owner, s.sensor_id, s.sensor_type).limit(limit).subquery()
    stmt = (
        select(
            listed.c.id,
            listed.c.owner,
            listed.c.sensor_id,
            listed.c.sensor_type,
            listed.c.fields,
            _R.ts_us,
            _R.id.label("reading_id"),
            _R.payload,
            nodes.c.node_id,
        )
        .select_from(
            listed.outerjoin(
                readings,
                and_(
                    _R.sensor_ref == listed.c.id,
                    _R.ts_us
                    == select(func.max(_R.ts_us))
                    .where(_R.sensor_ref == listed.c.id)
                    .correlate(listed)
                    .scalar_subquery(),
                ),
            ).outerjoin(nodes, nodes.c.id == _R.node_ref)
        )
        .order_by(listed.c.owner, listed.c.sensor_id, listed.c.sensor_type, _R.id.desc())
    )
    out: list[SensorLatest] = []
    seen: set[int] = set()
    for row in await conn.execute(stmt):
        if row.id in seen:  # two readings at the same instant: the later id is the newest
            continue
        seen.add(row.id)
        slots = decode_fields(row.fields)
        out.append(
            SensorLatest(
                owner=row.owner,
                sensor_id=row.sensor_id,
                sensor_type=row.sensor_type,
                fields=tuple(sorted(slots, key=slots.__getitem__)),
                ts_us=None if row.ts_us is None else int(row.ts_us),
                payload={} if row.payload is None else dict(_decode(row.payload)),
                node_id=row.node_id,
            )
        )
    return out
