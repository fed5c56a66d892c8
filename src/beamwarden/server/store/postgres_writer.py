"""Room: server/store (adapter). PostgreSQL's readings writer: asyncpg on SQLAlchemy's connection.

Imports SQLAlchemy, asyncpg (through SQLAlchemy's raw connection) and the shared hot path
(:mod:`.ingest`). A ``write_readings`` group is one transaction on a driver connection the writer
keeps (``await conn.get_raw_connection()`` → ``.driver_connection``), several groups at once
(``ingest_writers``). Locks are taken in one order: sensors (created with ``INSERT … ON CONFLICT
DO NOTHING`` and locked ``FOR UPDATE`` before slots are assigned, so two replicas cannot assign a
slot differently), the minutes' advisory keys (shared; see :mod:`.rollups`), the streams' advisory
keys (a hash of each (node, stream), and of each node with opaque ids, so replicas deduplicate one
after the other). The common group is copied first (``COPY``), then marks its minutes, then
claims its streams' new ranges in one call (``beamwarden_claim_ranges``, migration 0007) and
commits: see :meth:`PostgresReadingWriter._transaction`. Lookups use ``unnest`` arrays (one round
trip each, whatever the group's size). Commit is a normal, durable commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from beamwarden.server.errors import NotFound, ServerError
from beamwarden.server.records import BatchOutcome, ReadingBatch

from .config import StoreConfig
from .ingest import (
    MARKS_GENERATION_SQL,
    MARKS_WORTH_A_LOOK,
    MINUTE_LOCK_SPACE,
    MINUTE_LOCKS_MAX,
    GroupPlan,
    IngestCache,
    MarksCache,
    MarksSeen,
    SensorEntry,
    SensorKey,
    advisory_key,
    assign_slots,
    decode_fields,
    encode_fields,
    minute_lock_key,
)
from .layout import READING_COLUMNS

_SELECT_SENSORS = (
    "SELECT id, owner, sensor_id, sensor_type, fields FROM sensors "
    "WHERE (owner, sensor_id, sensor_type) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[], $3::text[])) ORDER BY id FOR UPDATE"
)


def _marks_statement(conflict: str) -> str:
    """Mark the commit's minutes for the rollup job (see .rollups), after taking their keys.

    ``$1``/``$2``: sensor refs and minutes as comma-separated text (asyncpg encodes a thousand
    numbers of an array parameter in about half a millisecond of the event loop, a joined text in
    a tenth), ``$3`` the time, ``$4`` the minutes' keys in MINUTE_LOCK_SPACE, taken shared. The
    condition names no row, so PostgreSQL evaluates it once, before the first row is inserted (a
    gating Result's one-time filter): the keys are held before any mark is looked at, and then
    until the commit.
    """
    return (
        "INSERT INTO rollup_dirty (sensor_ref, width_s, bucket_us, marked_us) "
        "SELECT s, 60, m, $3 FROM unnest(string_to_array($1, ',')::int[], "
        "string_to_array($2, ',')::bigint[]) AS k(s, m) "
        f"WHERE (SELECT count(pg_advisory_xact_lock_shared({MINUTE_LOCK_SPACE}, x)) "
        "FROM unnest($4::int[]) AS x) >= 0 "
        f"ON CONFLICT (sensor_ref, width_s, bucket_us) {conflict}"
    )


#: an existing mark is left as it is; the minutes' keys, held until the commit, keep the job off
#: them (the job takes a minute's marks only with its key held exclusively), so it never takes a
#: mark while readings it stands for are uncommitted, and writers do not wait for each other
_MARK = _marks_statement("DO NOTHING")
#: a commit spanning more than MINUTE_LOCKS_MAX minute keys (a backfill) takes no keys and locks
#: its marks' rows instead: an existing mark is not changed but locked until the commit
#: (``WHERE false`` still locks the conflicting row), and the job skips locked marks
_MARK_LOCKING = _marks_statement("DO UPDATE SET marked_us = rollup_dirty.marked_us WHERE false")
#: lock the streams and record their new ranges, or say that one is stored (migration 0007)
_CLAIM = "SELECT beamwarden_claim_ranges($1::bigint[], $2::text[], $3::text[], $4, $5)"
_LOCK = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k"


_MINUTE = operator.itemgetter(1)  # a mark's minute


def _columns(rows: Sequence[Sequence[Any]], n: int) -> list[list[Any]]:
    """The first ``n`` columns of ``rows``, as the array parameters of an ``unnest``."""
    return [[row[i] for row in rows] for i in range(n)]


def _texts(marks: list[tuple[int, int]], minutes: list[int]) -> tuple[str, str]:
    """The marks' sensor refs and minutes as the comma-separated texts of ``_MARK``."""
    refs = ",".join([str(m[0]) for m in marks])
    if len(minutes) == 1:
        return refs, ",".join([str(minutes[0])] * len(marks))
    return refs, ",".join([str(m[1]) for m in marks])


class _Duplicates(Exception):
    """An optimistic transaction copied a duplicate reading: it rolls back and runs again."""


class PostgresReadingWriter:
    """Runs readings transactions on asyncpg connections of an engine of its own (so readers
    never wait for a connection the writer keeps), kept between groups: no pool check-out,
    ping and reset around every commit."""

    def __init__(self, engine: AsyncEngine, config: StoreConfig) -> None:
        self._engine = engine
        self._window_us = int(config.opaque_id_window_s * 1_000_000)
        self._cache = IngestCache()
        self._marks = MarksCache()
        self._idle: list[tuple[AsyncConnection, Any]] = []
        # a write waiting for the pool would never see the connections kept here: at most as
        # many writes at once as the pool has connections
        self._slots = asyncio.Semaphore(2 * config.pool_size)  # pool_size + max_overflow
        #: groups whose optimistic transaction met a duplicate and ran again (for tests)
        self.retried = 0

    async def write(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        async with self._slots:
            return await self._write_on_a_connection(batches)

    async def _write_on_a_connection(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        conn, pg = await self._connection()
        try:
            outcomes = await self._write(pg, batches)
        except ServerError:  # raised outside a transaction: the connection is fine
            await self._keep(conn, pg)
            raise
        except BaseException:
            # a failed or cancelled transaction may leave the connection mid-protocol
            with contextlib.suppress(Exception):
                await conn.invalidate()
            await conn.close()
            raise
        await self._keep(conn, pg)
        return outcomes

    async def _connection(self) -> tuple[AsyncConnection, Any]:
        while self._idle:
            conn, pg = self._idle.pop()
            if not pg.is_closed():  # closed by the server (a restart) while it was idle
                return conn, pg
            with contextlib.suppress(Exception):
                await conn.invalidate()
            await conn.close()
        conn = await self._engine.connect()  # the pool pings it first
        try:
            raw = await conn.get_raw_connection()
        except BaseException:
            await conn.close()
            raise
        return conn, raw.driver_connection

    async def _keep(self, conn: AsyncConnection, pg: Any) -> None:
        if not pg.is_in_transaction():
            self._idle.append((conn, pg))
        else:
            await conn.close()

    async def _write(self, pg: Any, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        cache = self._cache
        missing = cache.missing_nodes(batches)
        if missing:
            for ref, node_id in await pg.fetch(
                "SELECT id, node_id FROM nodes WHERE node_id = ANY($1::text[])", missing
            ):
                cache.nodes[node_id] = ref
            unknown = [n for n in missing if n not in cache.nodes]
            if unknown:
                raise NotFound(f"unknown node(s): {', '.join(unknown[:5])}", code="unknown_node")
        assert not pg.is_in_transaction(), "the writer's connection is inside a transaction"
        try:
            return await self._transaction(pg, GroupPlan(batches, cache), optimistic=True)
        except _Duplicates:
            self.retried += 1
            return await self._transaction(pg, GroupPlan(batches, cache), optimistic=False)

    async def _transaction(
        self, pg: Any, plan: GroupPlan, *, optimistic: bool
    ) -> list[BatchOutcome]:
        """One group's transaction; locks are taken in one order: sensors, minutes, streams.

        ``optimistic``: every row is copied first, as if none were a duplicate; then one call of
        ``beamwarden_claim_ranges`` locks the streams and records their new ranges, unless one of
        them is stored already. So the locks serialise only that call and the commit of writers
        of one stream (two round trips), while the ``COPY`` of several writers, the bulk of a
        commit's work in the database, runs at once. A group that holds a duplicate raises
        :class:`_Duplicates` (the transaction rolls back), and the caller runs it again with
        ``optimistic=False``: locks first, deduplication reading by reading, and only the
        accepted rows copied.
        """
        batches = plan.batches
        now = max(b.received_us for b in batches)
        claims = plan.claims() if optimistic else None
        if optimistic and claims is None:
            raise _Duplicates  # a reading id twice in the group
        locks = {advisory_key(node_id, stream) for node_id, stream in plan.streams}
        locks.update(advisory_key(node_id, "") for node_id in plan.opaque)
        staged: dict[SensorKey, SensorEntry] = {}
        async with pg.transaction():
            if plan.pending:
                staged = await self._resolve_sensors(pg, plan.pending, now)
                plan.complete(staged)
            if optimistic:
                await pg.copy_records_to_table(
                    "readings", records=plan.rows, columns=READING_COLUMNS
                )
            # every row's minute, duplicates too (a mark too many costs the job a recompute)
            marks = GroupPlan.dirty_minutes(plan.rows)
            seen = await self._mark(pg, marks, now) if marks else MarksSeen(None, [])
            if claims is not None:
                if locks and not await pg.fetchval(
                    _CLAIM,
                    sorted(locks),
                    *_columns(claims, 4),
                ):
                    raise _Duplicates
                if plan.opaque:
                    since = min(b.received_us for b in batches) - self._window_us
                    await self._dedup_opaque(pg, plan, since)
                    if any(plan.dup):
                        raise _Duplicates
            else:
                if locks:
                    await pg.execute(_LOCK, sorted(locks))
                if plan.streams:
                    await self._dedup_streams(pg, plan)
                if plan.opaque:
                    since = min(b.received_us for b in batches) - self._window_us
                    await self._dedup_opaque(pg, plan, since)
                if plan.stored_dups:
                    await self._check_stored(pg, plan)
                rows = plan.accepted_rows()
                if rows:
                    await pg.copy_records_to_table(
                        "readings", records=rows, columns=READING_COLUMNS
                    )
        self._cache.adopt(staged)
        self._marks.adopt(seen)
        return plan.outcomes()

    async def _mark(self, pg: Any, marks: list[tuple[int, int]], now: int) -> MarksSeen:
        """Take the minutes' keys, mark the minutes (:func:`_marks_statement`) this process has
        not seen marked in the current generation, and those too if the generation moved on."""
        minutes = sorted(set(map(_MINUTE, marks)))
        keys = sorted({minute_lock_key(m) for m in minutes})
        if len(keys) > MINUTE_LOCKS_MAX:  # bounded: the lock table is the server's, and small
            await pg.execute(_MARK_LOCKING, *_texts(marks, minutes), now, [])
            return MarksSeen(None, [])
        if len(marks) < MARKS_WORTH_A_LOOK:  # a round trip costs more than these probes
            await pg.execute(_MARK, *_texts(marks, minutes), now, keys)
            return MarksSeen(None, [])
        # the generation the known marks were seen in, read now: the cache is shared by the
        # writer's connections, and another commit may adopt a newer generation while this one
        # waits for its keys (comparing with that, a minute whose marks the job deleted in
        # between would be left unmarked, and summarised without this commit's readings)
        seen = self._marks
        seen_generation = seen.generation
        known = [m for m in marks if m in seen.marks] if seen_generation is not None else []
        new = [m for m in marks if m not in seen.marks] if known else marks
        # with no new mark this still takes the keys (an empty unnest, the one-time filter runs)
        await pg.execute(_MARK, *_texts(new, minutes), now, keys)
        # a statement of its own: its snapshot is taken with the keys held, so a job that
        # deleted marks of these minutes has committed its new generation before
        generation = await pg.fetchval(MARKS_GENERATION_SQL)
        if known and generation != seen_generation:
            await pg.execute(_MARK, *_texts(known, minutes), now, [])
        return MarksSeen(generation, marks)

    @staticmethod
    async def _check_stored(pg: Any, plan: GroupPlan) -> None:
        """Look up the stored readings that the group's duplicates repeat, for conflicts."""
        keys = plan.stored_keys()
        found: dict[tuple[int, int, str], list[tuple[int, str]]] = {}
        for s, t, rid, node_ref, payload in await pg.fetch(
            "SELECT r.sensor_ref, r.ts_us, r.reading_id, r.node_ref, r.payload "
            "FROM readings r JOIN unnest($1::int[], $2::bigint[], $3::text[]) "
            "AS q(s, t, rid) ON r.sensor_ref = q.s AND r.ts_us = q.t "
            "AND r.reading_id = q.rid",
            *_columns(keys, 3),
        ):
            found.setdefault((s, t, rid), []).append((node_ref, payload))
        plan.check_stored(found)

    async def _resolve_sensors(
        self, pg: Any, pending: dict[SensorKey, dict[str, None]], now: int
    ) -> dict[SensorKey, SensorEntry]:
        keys = sorted(pending)  # one order for every replica: no deadlock on the unique index
        owners, ids, types = _columns(keys, 3)
        await pg.execute(
            "INSERT INTO sensors (owner, sensor_id, sensor_type, fields, created_us) "
            "SELECT o, s, t, '{}'::json, $4 FROM unnest($1::text[], $2::text[], $3::text[]) "
            "AS k(o, s, t) ON CONFLICT DO NOTHING",
            owners,
            ids,
            types,
            now,
        )
        out: dict[SensorKey, SensorEntry] = {}
        updates: list[tuple[int, str]] = []
        for ref, owner, sensor_id, sensor_type, fields in await pg.fetch(
            _SELECT_SENSORS, owners, ids, types
        ):
            key = (owner, sensor_id, sensor_type)
            slots = decode_fields(fields)
            extended = assign_slots(slots, pending[key])
            if extended is not None:
                updates.append((ref, encode_fields(extended)))
                slots = extended
            out[key] = SensorEntry(ref, slots)
        if updates:
            await pg.executemany("UPDATE sensors SET fields = $2::json WHERE id = $1", updates)
        return out

    async def _dedup_streams(self, pg: Any, plan: GroupPlan) -> None:
        bounds = plan.stream_bounds()
        stored: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for node_id, stream, lo, hi in await pg.fetch(
            "SELECT r.node_id, r.stream, r.lo, r.hi FROM stream_ranges r "
            "JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS q(n, s, lo, hi) "
            "ON r.node_id = q.n AND r.stream = q.s AND r.hi >= q.lo AND r.lo <= q.hi",
            *_columns(bounds, 4),
        ):
            stored.setdefault((node_id, stream), []).append((lo, hi))
        delete, upsert = plan.dedup_streams(stored)
        if not upsert:  # nothing new (a stored range only shrinks by merging with new ones)
            return
        # the rows to delete and to upsert have different ``lo``: one statement does both
        await pg.execute(
            "WITH gone AS (DELETE FROM stream_ranges r "
            "USING unnest($1::text[], $2::text[], $3::bigint[]) AS q(n, s, lo) "
            "WHERE r.node_id = q.n AND r.stream = q.s AND r.lo = q.lo) "
            "INSERT INTO stream_ranges (node_id, stream, lo, hi) "
            "SELECT * FROM unnest($4::text[], $5::text[], $6::bigint[], $7::bigint[]) "
            "ON CONFLICT (node_id, stream, lo) DO UPDATE SET hi = EXCLUDED.hi",
            *_columns(delete, 3),
            *_columns(upsert, 4),
        )

    async def _dedup_opaque(self, pg: Any, plan: GroupPlan, since: int) -> None:
        nodes: list[str] = []
        rids: list[str] = []
        for node_id, items in plan.opaque.items():
            for rid in dict.fromkeys(rid for rid, _ in items):
                nodes.append(node_id)
                rids.append(rid)
        stored = {
            (node_id, rid)
            for node_id, rid in await pg.fetch(
                "SELECT k.node_id, k.reading_id FROM reading_keys k "
                "JOIN unnest($1::text[], $2::text[]) AS q(n, rid) "
                "ON k.node_id = q.n AND k.reading_id = q.rid WHERE k.received_us >= $3",
                nodes,
                rids,
                since,
            )
        }
        new = plan.dedup_opaque(stored)
        if new:
            await pg.execute(
                "INSERT INTO reading_keys (node_id, reading_id, received_us) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) "
                "ON CONFLICT (node_id, reading_id) DO UPDATE SET received_us = EXCLUDED.received_us",
                *_columns(new, 3),
            )

    async def close(self) -> None:
        """Close the kept connections and the writer's engine."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            with contextlib.suppress(Exception):
                await conn.close()
        await self._engine.dispose()
