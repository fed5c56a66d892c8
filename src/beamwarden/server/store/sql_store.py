"""Room: server/store (adapter). :class:`SqlStore`: the ``Store`` port on SQLite and PostgreSQL.

Imports ``beamwarden.protocol``, ``beamwarden.server.records``, ``beamwarden.server.errors``,
SQLAlchemy and the drivers; never services, the API or the app. Everything except writing readings
is SQLAlchemy Core on an async engine (aiosqlite or asyncpg); ``write_readings`` goes to the
database's own writer (:mod:`.sqlite_writer`, :mod:`.postgres_writer`).

Every operation runs under a timeout (``query_timeout``; ``connect_timeout`` for ``ping``, for
opening a connection and for waiting on the pool) and maps driver failures to
:class:`~beamwarden.server.errors.StoreUnavailable` (:mod:`.failures`). ``pool_pre_ping`` replaces
dead connections, so the store recovers by itself when the database comes back.

Readings are found through their primary key ``(sensor_ref, ts_us, id)`` (the table's only
b-tree; on SQLite the rows themselves, ``WITHOUT ROWID``): a filter on node, sensor id,
sensor type or field is first turned into the set of sensor refs it can match (the ``sensors``
table is small), and a field filter becomes ``v<slot> IS NOT NULL`` for sensors that give the field
a slot (or, for the rare reading carrying that field as text, a JSON test), a JSON test otherwise.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from typing import cast as type_cast

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Select,
    and_,
    bindparam,
    case,
    cast,
    event,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from beamwarden.protocol import InstanceState, Scope, is_fleet_wide
from beamwarden.protocol.vocabulary import FIELD_NAME_RE
from beamwarden.server.errors import AlreadyExists, NotFound
from beamwarden.server.records import (
    BatchOutcome,
    EventFilter,
    EventRow,
    Heartbeat,
    NewEvent,
    NodeBeatRow,
    NodeFilter,
    NodeListRow,
    NodePackedRow,
    NodeRow,
    OperatorFields,
    ReadingBatch,
    ReadingFilter,
    ReadingRow,
    ReportedFields,
    SensorLatest,
    SeriesQuery,
    SeriesRow,
    StreamCuts,
    TelemetryQuery,
    TokenRow,
)

from . import node_listing
from .config import (
    StoreConfig,
    ensure_sqlite_dir,
    is_sqlite,
    normalise_url,
    sqlite_path,
    sqlite_reader_pragmas,
)
from .failures import guarded, is_unique_violation
from .ingest import decode_fields
from .layout import SLOTS
from .overview import (
    AGGREGATE,
    bucketed,
    heartbeat_times,
    latest_metrics,
    sensors_latest,
    telemetry_series,
)
from .partitions import ensure_partitions
from .postgres_writer import PostgresReadingWriter
from .rollups import (
    MINUTE_US,
    Agg,
    add_to,
    apply_minutes,
    forgotten_series,
    read_minutes,
    roll_up,
    rollup_series,
)
from .schema import (
    events,
    nodes,
    reading_keys,
    readings,
    retention_cuts,
    sensors,
    telemetry,
    tokens,
)
from .sqlite_writer import SqliteReadingWriter
from .sqlite_writer_process import SqliteWriterProcess
from .stream_retention import max_of

__all__ = ["SqlStore", "open_store"]

_decode = msgspec.json.Decoder().decode
_AGGREGATES = ("avg", "min", "max", "count", "sum")
_R = readings.c
_READING_COLUMNS = (
    _R.id,
    _R.sensor_ref,
    _R.node_ref,
    _R.source_ref,
    _R.ts_us,
    _R.received_us,
    _R.flags,
    _R.reading_id,
    _R.payload,
)
_VALUE_COLUMNS = tuple(readings.c[f"v{slot}"] for slot in range(SLOTS))


@dataclass(frozen=True)
class SeriesSql:
    """The SELECT of a series, the origin of its bucket numbers, and the shape of its rows:
    ``(bucket number, *aggregates)``, or (``packed``) ``(bucket number, text)`` with the aggregates
    as space-separated numbers (``N`` for NULL) — see :meth:`SqlStore.series_statement`."""

    stmt: Select[Any]
    origin: int
    packed: bool = False


def _engine(config: StoreConfig) -> AsyncEngine:
    url = normalise_url(config.url)
    common: dict[str, Any] = {
        "pool_size": config.pool_size,
        "max_overflow": config.pool_size,
        "pool_timeout": config.connect_timeout,
        "pool_pre_ping": True,
    }
    if not is_sqlite(url):
        return create_async_engine(
            url,
            connect_args={
                "timeout": config.connect_timeout,
                "command_timeout": config.query_timeout,
                "server_settings": {"jit": "on" if config.postgres_jit else "off"},
            },
            **common,
        )
    ensure_sqlite_dir(url)
    engine = create_async_engine(url, connect_args={"timeout": config.query_timeout}, **common)
    pragmas = sqlite_reader_pragmas(config)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    return engine


#: a series over a shorter range is computed from the raw readings (fast enough, and exact)
ROLLUP_MIN_SPAN_US = 2 * 3_600_000_000

#: the writer of readings: one of each database's (SQLite: in a thread or a child process)
ReadingWriter = SqliteReadingWriter | SqliteWriterProcess | PostgresReadingWriter


async def open_store(config: StoreConfig) -> SqlStore:
    """Build the store for ``config.url`` (SQLite or PostgreSQL). It does not connect or migrate:
    run :func:`beamwarden.server.store.upgrade` first; :meth:`SqlStore.ping` tells if it answers."""
    engine = _engine(config)
    url = normalise_url(config.url)
    writer: ReadingWriter
    if is_sqlite(url) and config.sqlite_writer == "thread":
        writer = SqliteReadingWriter(sqlite_path(url), config)
    elif is_sqlite(url):
        writer = SqliteWriterProcess(sqlite_path(url), config)
        await writer.start()
    else:
        writer = PostgresReadingWriter(_engine(config), config)  # an engine of its own
    return SqlStore(engine, config, writer)


class SqlStore:
    """Every method of the services' ``Store`` port, on one SQLAlchemy async engine."""

    def __init__(
        self,
        engine: AsyncEngine,
        config: StoreConfig,
        writer: ReadingWriter,
    ) -> None:
        self.engine = engine
        self.config = config
        self.dialect = engine.dialect.name  # "sqlite" | "postgresql"
        self._writer = writer
        self._node_refs: dict[str, int] = {}
        self._node_names: dict[int, str] = {}
        self._sensor_names: dict[int, tuple[str, str]] = {}
        self._packed: dict[tuple[NodeFilter, bool], tuple[str, list[str], dict[str, Any]]] = {}

    # -- plumbing --------------------------------------------------------------------------

    def _guard(self, limit_s: float | None = None) -> AbstractAsyncContextManager[None]:
        """Bound the block by ``limit_s`` (default ``query_timeout``) and map driver failures to
        StoreUnavailable."""
        return guarded(self.config.query_timeout if limit_s is None else limit_s)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._guard(), self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._guard(), self.engine.begin() as conn:
            yield conn

    async def ping(self) -> float:
        """``SELECT 1`` within ``connect_timeout``; its latency in seconds."""
        start = time.perf_counter()
        async with self._guard(self.config.connect_timeout), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return time.perf_counter() - start

    async def database_info(self) -> dict[str, str | None]:
        """The database server's version and the schema's Alembic revision (for diagnostics)."""
        version_sql = (
            "SELECT sqlite_version()" if self.dialect == "sqlite" else "SHOW server_version"
        )
        async with self._read() as conn:
            version = (await conn.execute(text(version_sql))).scalar_one_or_none()
            try:
                revision = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one_or_none()
            except SQLAlchemyError:  # no migrations table (a store made without Alembic)
                revision = None
        return {
            "version": None if version is None else str(version),
            "revision": None if revision is None else str(revision),
        }

    async def close(self) -> None:
        try:
            await self._writer.close()
        finally:
            await self.engine.dispose()

    # -- readings: writing -------------------------------------------------------------------

    async def write_readings(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        """Store the group in one transaction; return after a durable commit (see the writers).

        One outcome per batch, in order (an empty batch accepts nothing)."""
        full = [b for b in batches if b.readings]
        if not full:
            return [BatchOutcome(0, 0) for _ in batches]
        async with self._guard():
            done = iter(await self._writer.write(full))
        return [next(done) if b.readings else BatchOutcome(0, 0) for b in batches]

    async def prune_reading_keys(self, before_us: int) -> int:
        """Forget opaque reading ids received before ``before_us``; returns how many."""
        if not isinstance(self._writer, PostgresReadingWriter):
            async with self._guard():
                return await self._writer.prune_reading_keys(before_us)
        async with self._write() as conn:
            result = await conn.execute(
                reading_keys.delete().where(reading_keys.c.received_us < before_us)
            )
            return int(result.rowcount)

    async def ensure_partitions(
        self, now_us: int, days_behind: int = 1, days_ahead: int = 7
    ) -> list[str]:
        """PostgreSQL: create the day partitions of readings around ``now_us`` (see
        :mod:`.partitions`); returns the new ones. SQLite: nothing to do."""
        if self.dialect != "postgresql":
            return []
        async with self._write() as conn:
            return await ensure_partitions(conn, now_us, days_behind, days_ahead)

    # -- readings: reading -------------------------------------------------------------------

    async def list_readings(
        self, flt: ReadingFilter, limit: int, after: tuple[int, int] | None
    ) -> list[ReadingRow]:
        """Readings matching ``flt``, ordered by ``(ts_us, id)``, strictly after ``after``."""
        if limit <= 0:
            return []
        async with self._read() as conn:
            stmt = await self.readings_statement(conn, flt, limit, after)
            if stmt is None:
                return []
            rows = (await conn.execute(stmt)).all()
            return await self._reading_rows(conn, rows)

    async def readings_statement(
        self, conn: AsyncConnection, flt: ReadingFilter, limit: int, after: tuple[int, int] | None
    ) -> Select[Any] | None:
        """The SELECT of :meth:`list_readings` (``None`` when nothing can match); also for
        ``EXPLAIN`` in the contract tests. With a sensor restriction it walks the primary key
        ``(sensor_ref, ts_us, id)`` of each matching sensor."""
        where = await self._reading_where(conn, flt)
        if where is None:
            return None
        stmt = select(*_READING_COLUMNS).where(*where)
        if after is not None:
            ts, rid = after
            stmt = stmt.where(_R.ts_us >= ts, or_(_R.ts_us > ts, _R.id > rid))
        return stmt.order_by(_R.ts_us, _R.id).limit(limit)

    async def iter_readings(
        self, flt: ReadingFilter, chunk: int = 5000
    ) -> AsyncIterator[ReadingRow]:
        """All readings matching ``flt`` in ``(ts_us, id)`` order, ``chunk`` per query (keyset)."""
        after: tuple[int, int] | None = None
        while True:
            rows = await self.list_readings(flt, chunk, after)
            for row in rows:
                yield row
            if len(rows) < chunk:
                return
            after = (rows[-1].ts_us, rows[-1].id)

    async def count_readings(self, flt: ReadingFilter) -> int:
        async with self._read() as conn:
            where = await self._reading_where(conn, flt)
            if where is None:
                return 0
            stmt = select(func.count()).select_from(readings).where(*where)
            return int((await conn.execute(stmt)).scalar_one())

    async def _reading_where(
        self, conn: AsyncConnection, flt: ReadingFilter
    ) -> list[ColumnElement[bool]] | None:
        """The WHERE terms of ``flt`` on ``readings``, or ``None`` when nothing can match."""
        where: list[ColumnElement[bool]] = []
        if flt.since_us is not None:
            where.append(_R.ts_us >= flt.since_us)
        if flt.until_us is not None:
            where.append(_R.ts_us < flt.until_us)
        if flt.node_id is not None:
            node_ref = await self._node_ref(conn, flt.node_id)
            if node_ref is None:
                return None
            where.append(_R.node_ref == node_ref)
        restricted = (
            flt.node_id is not None or flt.sensor_id is not None or flt.sensor_type is not None
        )
        if not restricted and flt.field is None:
            return where
        if flt.field is not None and FIELD_NAME_RE.fullmatch(flt.field) is None:
            return None  # no payload field can have this name
        s = sensors.c
        stmt = select(s.id, s.sensor_id, s.sensor_type, s.fields)
        if flt.sensor_id is not None:
            stmt = stmt.where(s.sensor_id == flt.sensor_id)
            if is_fleet_wide(flt.sensor_id):
                stmt = stmt.where(s.owner == "")
            elif flt.node_id is not None:
                stmt = stmt.where(s.owner == flt.node_id)
        elif flt.node_id is not None:
            stmt = stmt.where(s.owner.in_([flt.node_id, ""]))
        if flt.sensor_type is not None:
            stmt = stmt.where(s.sensor_type == flt.sensor_type)
        candidates = (await conn.execute(stmt)).all()
        for ref, sensor_id, sensor_type, _ in candidates:
            self._sensor_names[ref] = (sensor_id, sensor_type)
        if restricted and not candidates:
            return None
        if flt.field is None:
            where.append(_R.sensor_ref.in_([c[0] for c in candidates]))
            return where
        field = flt.field
        by_slot: dict[int, list[int]] = {}
        unslotted: list[int] = []
        for ref, _, _, fields in candidates:
            slot = decode_fields(fields).get(field)
            if slot is None:
                unslotted.append(ref)
            else:
                by_slot.setdefault(slot, []).append(ref)
        has = self._json_has(field)
        terms: list[ColumnElement[bool]] = [
            # the slot answers for numbers; the payload for the rare text value of the field
            and_(_R.sensor_ref.in_(refs), or_(_VALUE_COLUMNS[slot].is_not(None), has))
            for slot, refs in sorted(by_slot.items())
        ]
        if unslotted:
            if restricted:
                in_sensors = _R.sensor_ref.in_(unslotted)
            else:  # every sensor is a candidate: name the (few) slotted ones instead
                in_sensors = _R.sensor_ref.not_in([r for refs in by_slot.values() for r in refs])
            terms.append(and_(in_sensors, has))
        where.append(or_(*terms) if terms else false())
        return where

    def _json_has(self, field: str) -> ColumnElement[bool]:
        """The payload has ``field`` (any JSON value, null included)."""
        if self.dialect == "sqlite":
            return func.json_type(_R.payload, f"$.{field}").is_not(None)
        return cast(_R.payload, JSONB).op("->")(field).is_not(None)

    def _json_number(self, field: str) -> ColumnElement[Any]:
        """The payload's ``field`` as a number, NULL when it is missing or not a number."""
        if self.dialect == "sqlite":
            path = f"$.{field}"
            return case(
                (
                    func.json_type(_R.payload, path).in_(("integer", "real")),
                    func.json_extract(_R.payload, path),
                ),
                else_=None,
            )
        doc = cast(_R.payload, JSONB)
        return case(
            (
                func.jsonb_typeof(doc.op("->")(field)) == "number",
                cast(doc.op("->>")(field), Double),
            ),
            else_=None,
        )

    async def _reading_rows(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[ReadingRow]:
        node_refs = {r.node_ref for r in rows} | {r.source_ref for r in rows if r.source_ref}
        await self._load_names(conn, node_refs, {r.sensor_ref for r in rows})
        names = self._node_names
        sensor_names = self._sensor_names
        out = []
        for r in rows:
            sensor_id, sensor_type = sensor_names[r.sensor_ref]
            out.append(
                ReadingRow(
                    id=r.id,
                    node_id=names[r.node_ref],
                    sensor_id=sensor_id,
                    sensor_type=sensor_type,
                    ts_us=r.ts_us,
                    received_us=r.received_us,
                    payload=_decode(r.payload),
                    reading_id=r.reading_id,
                    source=None if r.source_ref is None else names[r.source_ref],
                    flags=r.flags,
                )
            )
        return out

    async def _load_names(
        self, conn: AsyncConnection, node_refs: Iterable[int], sensor_refs: Iterable[int]
    ) -> None:
        missing_nodes = [r for r in node_refs if r not in self._node_names]
        if missing_nodes:
            for ref, node_id in await conn.execute(
                select(nodes.c.id, nodes.c.node_id).where(nodes.c.id.in_(missing_nodes))
            ):
                self._node_names[ref] = node_id
                self._node_refs[node_id] = ref
        missing_sensors = [r for r in sensor_refs if r not in self._sensor_names]
        if missing_sensors:
            s = sensors.c
            for ref, sensor_id, sensor_type in await conn.execute(
                select(s.id, s.sensor_id, s.sensor_type).where(s.id.in_(missing_sensors))
            ):
                self._sensor_names[ref] = (sensor_id, sensor_type)

    async def _node_ref(self, conn: AsyncConnection, node_id: str) -> int | None:
        ref = self._node_refs.get(node_id)
        if ref is None:
            ref = (
                await conn.execute(select(nodes.c.id).where(nodes.c.node_id == node_id))
            ).scalar_one_or_none()
            if ref is not None:
                self._node_refs[node_id] = ref
                self._node_names[ref] = node_id
        return ref

    async def series(self, query: SeriesQuery) -> list[SeriesRow]:
        """Buckets ``[since, until)`` of one numeric field, oldest first, at most ``query.limit``.

        Buckets start at multiples of ``bucket_us`` since the epoch; the aggregates are computed
        in SQL on the field's slot column (JSON extraction of numbers for a sensor that has no slot
        for it). An unknown sensor or field gives an empty list.
        """
        bucket = query.bucket_us
        for name in query.aggregates:
            if name not in _AGGREGATES:
                raise ValueError(f"unknown aggregate {name!r}")
        if (
            not query.aggregates
            or bucket <= 0
            or query.limit <= 0
            or query.since_us >= query.until_us
            or FIELD_NAME_RE.fullmatch(query.field) is None
        ):
            return []
        if is_fleet_wide(query.sensor_id):
            owner = ""
        elif query.node_id is not None:
            owner = query.node_id
        else:
            return []
        async with self._read() as conn:
            summed = await self._series_from_rollups(conn, query, owner)
            if summed is not None:
                return summed
            built = await self.series_statement(conn, query, owner)
            if built is None:
                return []
            rows = (await conn.execute(built.stmt)).all()
        out = []
        origin = built.origin
        for row in rows:
            values: dict[str, float | int | None] = {}
            fields = row[1].split(" ") if built.packed else row[1:]
            for name, x in zip(query.aggregates, fields, strict=True):
                if x is None or x == "N":
                    values[name] = None
                else:
                    values[name] = int(x) if name == "count" else float(x)
            out.append(SeriesRow(origin + int(row[0]) * bucket, values))
        return out

    async def _series_from_rollups(
        self, conn: AsyncConnection, query: SeriesQuery, owner: str
    ) -> list[SeriesRow] | None:
        """The series from :mod:`.rollups`, for one sensor with the field in a slot, when

        * retention has forgotten raw readings in the range (``retention_cuts``): whatever the
          range and the bucket, that part comes from the rollups (:func:`forgotten_series`) —
          never a hole — and the rest as usual;
        * or they fit: buckets of whole minutes over a range of at least
          :data:`ROLLUP_MIN_SPAN_US`, all on this page.

        ``None``: compute it from the raw readings instead."""
        bucket = query.bucket_us
        origin = query.since_us - query.since_us % bucket
        start = query.since_us
        if query.after_bucket_us is not None:
            start = max(start, origin + ((query.after_bucket_us - origin) // bucket + 1) * bucket)
        until = query.until_us
        if start >= until:
            return None
        s = sensors.c
        own, every = retention_cuts.alias("own"), retention_cuts.alias("every")
        candidates = (
            await conn.execute(
                select(s.id, s.fields, own.c.raw_us, own.c.minute_us, every.c.raw_us)
                .select_from(
                    sensors.outerjoin(own, own.c.sensor_ref == s.id).outerjoin(
                        every, every.c.sensor_ref == 0
                    )
                )
                .where(s.owner == owner, s.sensor_id == query.sensor_id)
            )
        ).all()  # with what retention forgot (one query: series are the hot read)
        if len(candidates) != 1:
            return None
        ((ref, fields, raw_us, minute_us, every_raw_us),) = candidates
        slot = decode_fields(fields).get(query.field)
        if slot is None:
            return None
        cut = StreamCuts(max_of(raw_us, every_raw_us), minute_us)
        if cut.raw_us is None or start >= cut.raw_us:
            if (
                bucket % MINUTE_US
                or until - query.since_us < ROLLUP_MIN_SPAN_US
                or -(-(until - origin) // bucket) > query.limit
            ):
                return None
            buckets = await rollup_series(conn, ref, slot, start, until, bucket, origin)
        else:
            kept_from = min(until, cut.raw_us)
            buckets, whole = await forgotten_series(
                conn,
                ref,
                slot,
                query.since_us,
                start,
                kept_from,
                bucket,
                origin,
                cut.minute_us,
                query.limit,
            )
            if whole and kept_from < until:
                if bucket % MINUTE_US == 0:
                    rest = await rollup_series(conn, ref, slot, kept_from, until, bucket, origin)
                else:
                    rest = await self._raw_buckets(conn, query, owner, kept_from, origin)
                for index, agg in rest.items():
                    add_to(buckets, index, agg.count, agg.total, agg.low, agg.high)
        out = []
        for index in sorted(buckets)[: query.limit]:
            agg = buckets[index]
            values: dict[str, float | int | None] = {}
            for name in query.aggregates:
                if name == "count":
                    values[name] = agg.count
                elif name == "sum":
                    values[name] = agg.total
                elif name == "avg":
                    values[name] = agg.total / agg.count
                elif name == "min":
                    values[name] = agg.low
                else:
                    values[name] = agg.high
            out.append(SeriesRow(origin + index * bucket, values))
        return out

    async def _raw_buckets(
        self, conn: AsyncConnection, query: SeriesQuery, owner: str, since: int, origin: int
    ) -> dict[int, Agg]:
        """count, sum, min and max of the buckets from ``since`` on, from the raw readings (the
        same buckets: they start at multiples of the bucket since the epoch)."""
        part = replace(
            query, since_us=since, aggregates=("count", "sum", "min", "max"), after_bucket_us=None
        )
        built = await self.series_statement(conn, part, owner)
        out: dict[int, Agg] = {}
        if built is None:
            return out
        for row in await conn.execute(built.stmt):
            fields = row[1].split(" ") if built.packed else row[1:]
            n, total, low, high = fields
            if n in (None, "N", 0, "0"):
                continue
            b = built.origin + int(row[0]) * query.bucket_us
            out[(b - origin) // query.bucket_us] = Agg(
                int(n), float(total), float(low), float(high)
            )
        return out

    async def roll_up(self, now_us: int, limit: int = 2000) -> int:
        """Summarise marked minutes into rollups (see :mod:`.rollups`); how many minutes. On
        SQLite the minutes are read first and written in a short write transaction after, so the
        readings writer does not wait for the reading."""
        if self.dialect == "sqlite":
            async with self._read() as conn:
                read = await read_minutes(conn, now_us, limit)
            async with self._write() as conn:
                return await apply_minutes(conn, read, now_us, limit)
        async with self._write() as conn:
            return await roll_up(conn, now_us, limit)

    async def series_statement(
        self, conn: AsyncConnection, query: SeriesQuery, owner: str
    ) -> SeriesSql | None:
        """The SELECT of :meth:`series` (checked ``query``, the sensor's ``owner``); ``None`` when
        nothing can match. Also for ``EXPLAIN`` in the contract tests: every scan of ``readings``
        must be a range of the one sensor's rows in the primary key ``(sensor_ref, ts_us, id)``.

        The usual case — one sensor, the field in a slot column — walks the buckets that hold a
        value (:meth:`_walk_buckets`): no sort of the readings, and it stops after ``limit``
        buckets. Otherwise (a sensor id shared by several sensor types, a field only in the JSON
        payload) one ``GROUP BY`` of the bucket numbers over the readings in range.
        """
        bucket = query.bucket_us
        origin = query.since_us - query.since_us % bucket
        start = query.since_us
        if query.after_bucket_us is not None:
            start = max(start, origin + ((query.after_bucket_us - origin) // bucket + 1) * bucket)
        if start >= query.until_us:
            return None
        s = sensors.c
        candidates = (
            await conn.execute(
                select(s.id, s.fields).where(s.owner == owner, s.sensor_id == query.sensor_id)
            )
        ).all()
        by_slot: dict[int, list[int]] = {}
        json_refs: list[int] = []
        for ref, fields in candidates:
            slots = decode_fields(fields)
            slot = slots.get(query.field)
            if slot is not None:
                by_slot.setdefault(slot, []).append(ref)
            elif len(slots) >= SLOTS:  # a numeric field past the 8th lives only in the payload
                json_refs.append(ref)
        if not by_slot and not json_refs:
            return None
        if not json_refs and len(by_slot) == 1:
            ((slot, slot_refs),) = by_slot.items()
            if len(slot_refs) == 1:
                return self._walk_buckets(slot_refs[0], _VALUE_COLUMNS[slot], query, origin, start)
        value = self._series_value(query.field, by_slot, json_refs)
        refs = [r for group in by_slot.values() for r in group] + json_refs
        inner = (
            select(
                # integer division: the same SQL on both databases
                ((_R.ts_us - literal(origin, BigInteger)) // literal(bucket, BigInteger)).label(
                    "b"
                ),
                value.label("v"),
            )
            .where(
                _R.sensor_ref.in_(refs),
                _R.ts_us >= start,
                _R.ts_us < query.until_us,
            )
            .subquery()
        )
        return SeriesSql(bucketed(inner, query.aggregates, query.limit), origin)

    def _walk_buckets(
        self, ref: int, column: ColumnElement[Any], query: SeriesQuery, origin: int, start: int
    ) -> SeriesSql:
        """A series of one sensor's slot column as a walk over the buckets that hold a value.

        A recursive CTE ``k`` yields the bucket number of the first reading with a value at or
        after the end of the previous bucket (one seek in the primary key: empty stretches cost
        nothing), and each bucket's aggregates are computed over its own key range. So the
        readings are visited once, in key order, and never sorted (a ``GROUP BY`` of the bucket
        number sorts every reading in range: 2x the time for a day of 1 Hz data, on both
        databases), and the walk ends after ``limit`` buckets, however long the range.

        PostgreSQL computes the aggregates in a ``LATERAL`` subquery. SQLite has no ``LATERAL``:
        its correlated scalar subquery returns them as one text, ``printf('%!.20g')`` per number
        (SQLite 3.40's 17-digit output is off by one unit in the last place for some numbers
        beyond 1e250; 18 digits and more read back exactly — a contract test checks extremes).
        """
        r = _R
        bucket = query.bucket_us
        until = query.until_us
        o = literal(origin, BigInteger)
        w = literal(bucket, BigInteger)

        def first_bucket_from(lo: ColumnElement[Any]) -> ColumnElement[Any]:
            return (
                select((r.ts_us - o) // w)
                .where(r.sensor_ref == ref, r.ts_us >= lo, r.ts_us < until, column.is_not(None))
                .order_by(r.ts_us)
                .limit(1)
                .scalar_subquery()
            )

        k = select(first_bucket_from(literal(start, BigInteger)).label("b")).cte(
            "k", recursive=True
        )
        k = k.union_all(select(first_bucket_from(o + (k.c.b + 1) * w)).where(k.c.b.is_not(None)))
        lo = o + k.c.b * w
        in_bucket = (
            r.sensor_ref == ref,
            r.ts_us >= lo,
            r.ts_us < lo + w,
            r.ts_us >= start,
            r.ts_us < until,
        )
        aggregates = [AGGREGATE[a](column) for a in query.aggregates]
        if self.dialect == "sqlite":
            parts: list[ColumnElement[Any]] = []
            for name, agg in zip(query.aggregates, aggregates, strict=True):
                number = func.printf("%d" if name == "count" else "%!.20g", agg)
                parts.append(case((agg.is_(None), "N"), else_=number))
            packed = parts[0]
            for part in parts[1:]:
                packed = packed.concat(" ").concat(part)
            values = select(packed).where(*in_bucket).scalar_subquery()
            stmt = select(k.c.b, values.label("a")).where(k.c.b.is_not(None))
            return SeriesSql(stmt.limit(query.limit), origin, packed=True)
        lateral = (
            select(
                *(agg.label(name) for name, agg in zip(query.aggregates, aggregates, strict=True))
            )
            .where(*in_bucket)
            .lateral("a")
        )
        stmt = (
            select(k.c.b, *lateral.c)
            .select_from(k.join(lateral, true()))
            .where(k.c.b.is_not(None))
            .limit(query.limit)
        )
        return SeriesSql(stmt, origin)

    def _series_value(
        self, field: str, by_slot: dict[int, list[int]], json_refs: list[int]
    ) -> ColumnElement[Any]:
        if not json_refs and len(by_slot) == 1:
            return _VALUE_COLUMNS[next(iter(by_slot))]
        if not by_slot:
            return self._json_number(field)
        whens = [(_R.sensor_ref.in_(refs), _VALUE_COLUMNS[slot]) for slot, refs in by_slot.items()]
        return case(*whens, else_=self._json_number(field) if json_refs else None)

    # -- the dashboard's other reads (:mod:`.overview`) ------------------------------------------

    async def telemetry_series(self, query: TelemetryQuery) -> list[SeriesRow]:
        """Buckets of one numeric heartbeat metric of one node (unknown node: empty)."""
        async with self._read() as conn:
            ref = await self._node_ref(conn, query.node_id)
            return [] if ref is None else await telemetry_series(conn, self.dialect, ref, query)

    async def heartbeat_times(
        self, node_id: str, since_us: int, until_us: int, limit: int
    ) -> list[int]:
        """Receive times of the node's heartbeats in ``[since, until)``, oldest first."""
        async with self._read() as conn:
            ref = await self._node_ref(conn, node_id)
            return (
                [] if ref is None else await heartbeat_times(conn, ref, since_us, until_us, limit)
            )

    async def latest_metrics_of(self, node_id: str) -> dict[str, Any] | None:
        """The metrics of the node's newest heartbeat (``None`` before any)."""
        async with self._read() as conn:
            ref = await self._node_ref(conn, node_id)
            return None if ref is None else await latest_metrics(conn, ref)

    async def sensors_latest(self, owner: str | None, limit: int) -> list[SensorLatest]:
        """Sensors of ``owner`` (a node id, '' for fleet-wide ids, ``None``: all), each with its
        newest reading."""
        async with self._read() as conn:
            return await sensors_latest(conn, owner, limit)

    # -- nodes ---------------------------------------------------------------------------------

    async def create_node(self, node_id: str, role: str, now_us: int) -> NodeRow:
        """Raises AlreadyExists if the node id is taken."""
        stmt = (
            nodes.insert()
            .values(
                node_id=node_id,
                role=role,
                created_us=now_us,
                operator_tags={},
                reported_tags={},
                interval_seconds=30.0,
                clock_samples=0,
                enrolment_open=False,
            )
            .returning(*nodes.c)
        )
        try:
            async with self._write() as conn:
                row = (await conn.execute(stmt)).one()
        except Exception as exc:
            if is_unique_violation(exc) or is_unique_violation(exc.__cause__ or exc):
                raise AlreadyExists(f"node {node_id!r} exists", code="node_exists") from None
            raise
        return _node(row)

    async def get_node(self, node_id: str) -> NodeRow | None:
        async with self._read() as conn:
            row = (await conn.execute(select(nodes).where(nodes.c.node_id == node_id))).first()
        return None if row is None else _node(row)

    async def list_nodes(self, limit: int, after: str | None) -> list[NodeRow]:
        """Nodes ordered by node_id, strictly after ``after``."""
        stmt = select(nodes).order_by(nodes.c.node_id).limit(limit)
        if after is not None:
            stmt = stmt.where(nodes.c.node_id > after)
        async with self._read() as conn:
            return [_node(row) for row in await conn.execute(stmt)]

    async def list_node_rows(
        self, flt: NodeFilter, limit: int, after: str | None
    ) -> list[NodeListRow]:
        """Nodes matching ``flt`` ordered by node_id, strictly after ``after``: the columns a node
        record shows, tags as stored JSON text (a listing's fast path; see :mod:`.node_listing`)."""
        stmt = node_listing.list_statement(flt, limit, after)
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        # SQLAlchemy's rows are named tuples of exactly these columns: not copied (10 000 copies
        # were 5 % of listing the whole fleet)
        return type_cast(list[NodeListRow], rows)

    async def list_node_packed(
        self, flt: NodeFilter, limit: int, after: str | None
    ) -> list[NodePackedRow]:
        """As :meth:`list_node_rows`, each row's strings, integers and boolean packed into one
        text by the database (``GET /api/nodes``; see :mod:`.node_listing`).

        Run on the driver's own connection (the statement compiled once per filter): SQLAlchemy's
        result rows and, on PostgreSQL, its BEGIN and ROLLBACK round trips were a third of it."""
        sql, names, bound = self._packed_sql(flt, after is not None)
        values = {**bound, "after": after, "limit": limit}
        params = [values[name] for name in names]
        async with self._read() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            if self.dialect == "sqlite":
                rows = await driver.execute_fetchall(sql, params)
            else:
                rows = await driver.fetch(sql, *params)
        return type_cast(list[NodePackedRow], rows)  # tuples (asyncpg: records) of these columns

    def unpack_node(self, row: NodePackedRow) -> NodeListRow:
        """The ``NodeListRow`` of a row of :meth:`list_node_packed`."""
        return node_listing.unpack(row, sqlite=self.dialect == "sqlite")

    def _packed_sql(self, flt: NodeFilter, after: bool) -> tuple[str, list[str], dict[str, Any]]:
        """The SQL of :func:`.node_listing.packed_statement` for this dialect, the names of its
        positional parameters in order and the values the filter bound."""
        found = self._packed.get((flt, after))
        if found is None:
            stmt = node_listing.packed_statement(flt, after=after, sqlite=self.dialect == "sqlite")
            compiled = stmt.compile(dialect=self.engine.dialect)
            names = list(compiled.positiontup or ())
            if len(self._packed) >= 64:
                self._packed.clear()
            found = self._packed[(flt, after)] = (compiled.string, names, dict(compiled.params))
        return found

    async def node_beats(self, flt: NodeFilter) -> list[NodeBeatRow]:
        """``(node_id, last_heartbeat_us, interval_seconds)`` of every node matching ``flt``."""
        async with self._read() as conn:
            rows = (await conn.execute(node_listing.beats_statement(flt))).all()
        return type_cast(list[NodeBeatRow], rows)  # named tuples of these columns, as above

    async def last_reading_us(self, node_ids: Sequence[str]) -> dict[str, int]:
        """The newest reading time of each of these nodes' own sensors (nodes without any are
        left out). Meant for a page of nodes, not the whole fleet."""
        if not node_ids:
            return {}
        async with self._read() as conn:
            rows = await conn.execute(node_listing.last_reading_statement(node_ids))
            return {owner: int(ts) for owner, ts in rows if ts is not None}

    async def _update_node(self, node_id: str, **values: Any) -> NodeRow:
        if not values:
            row = await self.get_node(node_id)
            if row is None:
                raise NotFound(f"no node {node_id!r}", code="unknown_node")
            return row
        stmt = update(nodes).where(nodes.c.node_id == node_id).values(**values).returning(*nodes.c)
        async with self._write() as conn:
            found = (await conn.execute(stmt)).first()
        if found is None:
            raise NotFound(f"no node {node_id!r}", code="unknown_node")
        return _node(found)

    async def record_registration(
        self, node_id: str, reported: ReportedFields, now_us: int
    ) -> NodeRow:
        """Replace what the node reported; never touches operator fields. Raises NotFound."""
        return await self._update_node(
            node_id,
            role=reported.role,
            hostname=reported.hostname,
            ip_address=reported.ip_address,
            software_version=reported.software_version,
            reported_tags=dict(reported.reported_tags),
            registered_us=now_us,
        )

    async def set_operator_fields(self, node_id: str, fields: OperatorFields) -> NodeRow:
        """Set the operator fields that are not ``None``. Raises NotFound."""
        values: dict[str, Any] = {}
        if fields.display_name is not None:
            values["display_name"] = fields.display_name
        if fields.site is not None:
            values["site"] = fields.site
        if fields.room is not None:
            values["room"] = fields.room
        if fields.operator_tags is not None:
            values["operator_tags"] = dict(fields.operator_tags)
        return await self._update_node(node_id, **values)

    async def set_enrolment_open(self, node_id: str, is_open: bool) -> NodeRow:
        return await self._update_node(node_id, enrolment_open=is_open)

    async def revoke_node(self, node_id: str, now_us: int) -> NodeRow:
        """Mark the node revoked (keeping the first revocation time) and revoke all its tokens."""
        async with self._write() as conn:
            row = (
                await conn.execute(
                    update(nodes)
                    .where(nodes.c.node_id == node_id)
                    .values(revoked_us=func.coalesce(nodes.c.revoked_us, now_us))
                    .returning(*nodes.c)
                )
            ).first()
            if row is None:
                raise NotFound(f"no node {node_id!r}", code="unknown_node")
            await conn.execute(_revoke_tokens_of(node_id, now_us))
        return _node(row)

    async def write_heartbeats(self, beats: list[Heartbeat]) -> None:
        """Insert telemetry rows and update each node's last-heartbeat facts, in one transaction.

        A node's facts come from its last heartbeat in the list. Heartbeats of a node id that is
        not in the inventory are skipped (the service checks before; this only guards a race).
        """
        if not beats:
            return
        async with self._write() as conn:
            names = sorted({b.node_id for b in beats} - self._node_refs.keys())
            if names:
                for ref, node_id in await conn.execute(
                    select(nodes.c.id, nodes.c.node_id).where(nodes.c.node_id.in_(names))
                ):
                    self._node_refs[node_id] = ref
                    self._node_names[ref] = node_id
            refs = self._node_refs
            known = [b for b in beats if b.node_id in refs]
            if not known:
                return
            await conn.execute(
                telemetry.insert(),
                [
                    {
                        "node_ref": refs[b.node_id],
                        "ts_us": b.ts_us,
                        "received_us": b.received_us,
                        "uptime_seconds": b.uptime_seconds,
                        "software_version": b.software_version,
                        "ip_address": b.ip_address,
                        "interval_seconds": b.interval_seconds,
                        "instance_id": b.instance_id,
                        "state": None if b.state is None else str(b.state),
                        "protocol_version": b.protocol_version,
                        "metrics": dict(b.metrics),
                        "tags": dict(b.tags),
                    }
                    for b in known
                ],
            )
            last = {b.node_id: b for b in known}
            await conn.execute(
                update(nodes)
                .where(nodes.c.id == bindparam("p_ref"))
                .values(
                    last_heartbeat_us=bindparam("p_received"),
                    interval_seconds=bindparam("p_interval"),
                    uptime_seconds=bindparam("p_uptime"),
                    instance_id=bindparam("p_instance"),
                    state=bindparam("p_state"),
                    protocol_version=bindparam("p_protocol"),
                    clock_offset_seconds=bindparam("p_offset"),
                    clock_samples=bindparam("p_samples"),
                ),
                [
                    {
                        "p_ref": refs[b.node_id],
                        "p_received": b.received_us,
                        "p_interval": b.interval_seconds,
                        "p_uptime": b.uptime_seconds,
                        "p_instance": b.instance_id,
                        "p_state": None if b.state is None else str(b.state),
                        "p_protocol": b.protocol_version,
                        "p_offset": b.clock_offset_seconds,
                        "p_samples": b.clock_samples,
                    }
                    for b in sorted(last.values(), key=lambda b: refs[b.node_id])
                ],
            )

    # -- tokens --------------------------------------------------------------------------------

    async def create_token(
        self,
        token_hash: bytes,
        kind: str,
        name: str,
        scopes: frozenset[Scope],
        node_id: str | None,
        now_us: int,
        user_id: int | None = None,
    ) -> TokenRow:
        """Raises AlreadyExists if a token with this hash exists."""
        stmt = (
            tokens.insert()
            .values(
                token_hash=token_hash,
                kind=kind,
                name=name,
                scopes=_scopes_text(scopes),
                node_id=node_id,
                created_us=now_us,
                user_id=user_id,
            )
            .returning(*tokens.c)
        )
        try:
            async with self._write() as conn:
                row = (await conn.execute(stmt)).one()
        except Exception as exc:
            if is_unique_violation(exc) or is_unique_violation(exc.__cause__ or exc):
                raise AlreadyExists("a token with this hash exists", code="token_exists") from None
            raise
        return _token(row)

    async def find_token(self, token_hash: bytes) -> TokenRow | None:
        """The token with this SHA-256 hash, revoked or not."""
        async with self._read() as conn:
            row = (
                await conn.execute(select(tokens).where(tokens.c.token_hash == token_hash))
            ).first()
        return None if row is None else _token(row)

    async def list_tokens(self) -> list[TokenRow]:
        async with self._read() as conn:
            return [_token(row) for row in await conn.execute(select(tokens).order_by(tokens.c.id))]

    async def revoke_token(self, token_id: int, now_us: int) -> TokenRow:
        """Revoke the token (keeping the first revocation time). Raises NotFound."""
        stmt = (
            update(tokens)
            .where(tokens.c.id == token_id)
            .values(revoked_us=func.coalesce(tokens.c.revoked_us, now_us))
            .returning(*tokens.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"no token {token_id}", code="unknown_token")
        return _token(row)

    async def revoke_node_tokens(self, node_id: str, now_us: int) -> int:
        """Revoke every live token of the node; returns how many."""
        async with self._write() as conn:
            result = await conn.execute(_revoke_tokens_of(node_id, now_us))
        return int(result.rowcount)

    # -- events --------------------------------------------------------------------------------

    async def add_event(self, event: NewEvent) -> int:
        stmt = (
            events.insert()
            .values(
                ts_us=event.ts_us,
                kind=event.kind,
                node_id=event.node_id,
                actor=event.actor,
                request_id=event.request_id,
                message=event.message,
                data=dict(event.data),
            )
            .returning(events.c.id)
        )
        async with self._write() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def add_events(self, batch: Sequence[NewEvent]) -> None:
        if not batch:
            return
        rows = [
            {
                "ts_us": e.ts_us,
                "kind": e.kind,
                "node_id": e.node_id,
                "actor": e.actor,
                "request_id": e.request_id,
                "message": e.message,
                "data": dict(e.data),
            }
            for e in batch
        ]
        async with self._write() as conn:
            await conn.execute(events.insert(), rows)

    async def list_events(
        self, flt: EventFilter, limit: int, before_id: int | None
    ) -> list[EventRow]:
        """Newest first (by id), strictly before ``before_id``."""
        e = events.c
        stmt: Select[Any] = select(events).order_by(e.id.desc()).limit(limit)
        if before_id is not None:
            stmt = stmt.where(e.id < before_id)
        if flt.node_id is not None:
            stmt = stmt.where(e.node_id == flt.node_id)
        if flt.kind is not None:
            stmt = stmt.where(e.kind == flt.kind)
        if flt.since_us is not None:
            stmt = stmt.where(e.ts_us >= flt.since_us)
        if flt.until_us is not None:
            stmt = stmt.where(e.ts_us < flt.until_us)
        async with self._read() as conn:
            return [
                EventRow(
                    id=row.id,
                    ts_us=row.ts_us,
                    kind=row.kind,
                    message=row.message,
                    node_id=row.node_id,
                    actor=row.actor,
                    request_id=row.request_id,
                    data=dict(row.data or {}),
                )
                for row in await conn.execute(stmt)
            ]


def _revoke_tokens_of(node_id: str, now_us: int) -> Any:
    return (
        update(tokens)
        .where(tokens.c.node_id == node_id, tokens.c.revoked_us.is_(None))
        .values(revoked_us=now_us)
    )


def _scopes_text(scopes: frozenset[Scope]) -> str:
    return ",".join(sorted(str(s) for s in scopes))


def _token(row: Any) -> TokenRow:
    return TokenRow(
        id=row.id,
        kind=row.kind,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes.split(",") if s),
        node_id=row.node_id,
        created_us=row.created_us,
        revoked_us=row.revoked_us,
        user_id=row.user_id,
    )


def _node(row: Any) -> NodeRow:
    return NodeRow(
        node_id=row.node_id,
        role=row.role,
        created_us=row.created_us,
        display_name=row.display_name,
        site=row.site,
        room=row.room,
        operator_tags=dict(row.operator_tags or {}),
        hostname=row.hostname,
        ip_address=row.ip_address,
        software_version=row.software_version,
        reported_tags=dict(row.reported_tags or {}),
        registered_us=row.registered_us,
        last_heartbeat_us=row.last_heartbeat_us,
        interval_seconds=float(row.interval_seconds),
        uptime_seconds=row.uptime_seconds,
        instance_id=row.instance_id,
        state=None if row.state is None else InstanceState(row.state),
        protocol_version=row.protocol_version,
        clock_offset_seconds=row.clock_offset_seconds,
        clock_samples=int(row.clock_samples),
        enrolment_open=bool(row.enrolment_open),
        revoked_us=row.revoked_us,
    )
