"""Room: server/store (adapter). PostgreSQL's readings writer: asyncpg on SQLAlchemy's connection.

Imports SQLAlchemy, asyncpg (through SQLAlchemy's raw connection) and the shared hot path
(:mod:`.ingest`). A ``write_readings`` group is one transaction on the driver connection
(``await conn.get_raw_connection()`` → ``.driver_connection``): sensors are created with
``INSERT … ON CONFLICT DO NOTHING`` and locked ``FOR UPDATE`` before slots are assigned (so two
server replicas cannot assign a slot differently); ``pg_advisory_xact_lock`` is taken, in a fixed
order, on a hash of each (node, stream) and of each node with opaque ids, so replicas deduplicate
one after the other; lookups use ``unnest`` arrays (one round trip each, whatever the group's size);
readings go in with ``COPY`` (``copy_records_to_table``). Commit is a normal, durable commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from beamwarden.server.errors import NotFound, ServerError
from beamwarden.server.records import BatchOutcome, ReadingBatch

from .config import StoreConfig
from .ingest import (
    GroupPlan,
    IngestCache,
    SensorEntry,
    SensorKey,
    advisory_key,
    assign_slots,
    decode_fields,
    encode_fields,
)
from .layout import READING_COLUMNS

_SELECT_SENSORS = (
    "SELECT id, owner, sensor_id, sensor_type, fields FROM sensors "
    "WHERE (owner, sensor_id, sensor_type) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[], $3::text[])) ORDER BY id FOR UPDATE"
)


#: the minutes a commit touched, for the rollup job; an existing mark is not changed but locked
#: until this commit (``WHERE false`` still locks the conflicting row), so the job, which skips
#: locked marks, never takes one while readings it stands for are uncommitted (see .rollups)
_MARK_DIRTY = (
    "INSERT INTO rollup_dirty (sensor_ref, width_s, bucket_us, marked_us) "
    "SELECT s, 60, m, $3 FROM unnest($1::int[], $2::bigint[]) AS k(s, m) "
    "ON CONFLICT (sensor_ref, width_s, bucket_us) DO UPDATE SET marked_us = rollup_dirty.marked_us "
    "WHERE false"
)


class PostgresReadingWriter:
    """Runs readings transactions on a pooled asyncpg connection of the store's engine."""

    def __init__(self, engine: AsyncEngine, config: StoreConfig) -> None:
        self._engine = engine
        self._window_us = int(config.opaque_id_window_s * 1_000_000)
        self._cache = IngestCache()

    async def write(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg: Any = raw.driver_connection
            try:
                return await self._write(pg, batches)
            except ServerError:
                raise
            except BaseException:
                # a failed or cancelled transaction may leave the connection mid-protocol
                await conn.invalidate()
                raise

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
        plan = GroupPlan(batches, cache)
        now = max(b.received_us for b in batches)
        staged: dict[SensorKey, SensorEntry] = {}
        assert not pg.is_in_transaction(), "the pooled connection is inside a transaction"
        async with pg.transaction():
            if plan.pending:
                staged = await self._resolve_sensors(pg, plan.pending, now)
                plan.complete(staged)
            locks = {advisory_key(node_id, stream) for node_id, stream in plan.streams}
            locks.update(advisory_key(node_id, "") for node_id in plan.opaque)
            if locks:
                await pg.execute(
                    "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", sorted(locks)
                )
            if plan.streams:
                await self._dedup_streams(pg, plan)
            if plan.opaque:
                since = min(b.received_us for b in batches) - self._window_us
                await self._dedup_opaque(pg, plan, since)
            if plan.stored_dups:
                keys = plan.stored_keys()
                found: dict[tuple[int, int, str], list[tuple[int, str]]] = {}
                for s, t, rid, node_ref, payload in await pg.fetch(
                    "SELECT r.sensor_ref, r.ts_us, r.reading_id, r.node_ref, r.payload "
                    "FROM readings r JOIN unnest($1::int[], $2::bigint[], $3::text[]) "
                    "AS q(s, t, rid) ON r.sensor_ref = q.s AND r.ts_us = q.t "
                    "AND r.reading_id = q.rid",
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                ):
                    found.setdefault((s, t, rid), []).append((node_ref, payload))
                plan.check_stored(found)
            rows = plan.accepted_rows()
            if rows:
                marks = GroupPlan.dirty_minutes(rows)
                await pg.execute(_MARK_DIRTY, [m[0] for m in marks], [m[1] for m in marks], now)
                await pg.copy_records_to_table("readings", records=rows, columns=READING_COLUMNS)
        cache.adopt(staged)
        return plan.outcomes()

    async def _resolve_sensors(
        self, pg: Any, pending: dict[SensorKey, dict[str, None]], now: int
    ) -> dict[SensorKey, SensorEntry]:
        keys = sorted(pending)  # one order for every replica: no deadlock on the unique index
        owners = [k[0] for k in keys]
        ids = [k[1] for k in keys]
        types = [k[2] for k in keys]
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
            [b[0] for b in bounds],
            [b[1] for b in bounds],
            [b[2] for b in bounds],
            [b[3] for b in bounds],
        ):
            stored.setdefault((node_id, stream), []).append((lo, hi))
        delete, insert = plan.dedup_streams(stored)
        if delete:
            await pg.execute(
                "DELETE FROM stream_ranges r USING unnest($1::text[], $2::text[], $3::bigint[]) "
                "AS q(n, s, lo) WHERE r.node_id = q.n AND r.stream = q.s AND r.lo = q.lo",
                [d[0] for d in delete],
                [d[1] for d in delete],
                [d[2] for d in delete],
            )
        if insert:
            await pg.execute(
                "INSERT INTO stream_ranges (node_id, stream, lo, hi) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])",
                [i[0] for i in insert],
                [i[1] for i in insert],
                [i[2] for i in insert],
                [i[3] for i in insert],
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
                [k[0] for k in new],
                [k[1] for k in new],
                [k[2] for k in new],
            )

    async def close(self) -> None:
        """Nothing of its own to close: the engine is the store's."""
