"""Room: server/store (adapter). :class:`SqlRetention`: bounded deletes of old events and telemetry
on SQLite and PostgreSQL (the ``RetentionStore`` port of ``services/retention.py``).

Imports SQLAlchemy, :mod:`.schema`, :mod:`.failures` and ``server.errors``; never services.

Neither table has an index on its time column (and the schema is not this module's to change),
but both are written in time order: ids grow as rows are inserted, stamped by the server's clock.
So one batch is the oldest rows by primary key, up to the first row still within retention::

    DELETE FROM events WHERE id IN (
        SELECT id FROM events
        WHERE ts_us < :before AND id < (SELECT id FROM events WHERE ts_us >= :before
                                        ORDER BY id LIMIT 1)
        ORDER BY id LIMIT :batch)

Both scans walk the primary key from its low end and stop early: the cost is the rows deleted,
never the table. A row stamped earlier than a row before it (a heartbeat buffered through a
database outage and written late, a clock stepped back) goes once the rows before it have gone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .failures import guarded
from .schema import events, telemetry

#: an id larger than any (the upper bound when every row is old)
_NO_ID = 2**62


def _bounded_delete(table: Table, time_column: str, before_us: int, limit: int) -> Any:
    ids = table.c.id
    stamped = table.c[time_column]
    first_kept = select(ids).where(stamped >= before_us).order_by(ids).limit(1).scalar_subquery()
    doomed = (
        select(ids)
        .where(stamped < before_us, ids < func.coalesce(first_kept, _NO_ID))
        .order_by(ids)
        .limit(limit)
    )
    return table.delete().where(ids.in_(doomed))


class SqlRetention:
    """Old rows deleted a bounded batch at a time, each batch its own short transaction."""

    def __init__(self, engine: AsyncEngine, query_timeout: float = 30.0):
        self._engine = engine
        self._timeout = query_timeout

    async def delete_events_before(self, before_us: int, limit: int) -> int:
        return await self._delete(events, "ts_us", before_us, limit)

    async def delete_telemetry_before(self, before_us: int, limit: int) -> int:
        return await self._delete(telemetry, "received_us", before_us, limit)

    async def _delete(self, table: Table, column: str, before_us: int, limit: int) -> int:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        async with guarded(self._timeout), self._engine.begin() as conn:
            result = await conn.execute(_bounded_delete(table, column, before_us, limit))
            return int(result.rowcount)
