"""Room: server/store (adapter). PostgreSQL's readings in time partitions: one per day of ``ts_us``.

Imports SQLAlchemy only. ``readings`` is ``PARTITION BY RANGE (ts_us)`` on PostgreSQL (migration
0001); each partition ``readings_pYYYYMMDD`` holds one UTC day, and ``readings_default`` takes what
no partition covers (a node whose clock says 1970, a backfill older than the partitions), so no
reading is ever refused for its time. :func:`ensure_partitions` creates the days around ``now``
(the app calls it at start and then every hour, ahead of time: a day's partition exists before its
first reading, so the default partition stays small; creating a partition scans the default one for
rows of its range). :func:`drop_partitions_before` is retention by time: dropping a day is
instantaneous and leaves no dead rows behind, unlike ``DELETE``.

Several replicas may run these at once: ``CREATE TABLE IF NOT EXISTS`` and ``DROP TABLE IF EXISTS``
under a transaction-scoped advisory lock, so they queue instead of colliding.
SQLite has no partitions; these functions do nothing there.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("beamwarden.store")

DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"readings_p(\d{8})\Z")
#: the advisory lock key of partition maintenance (any constant unlikely to collide)
_LOCK_KEY = 0x6277_7061_7274  # "bwpart"


def is_partition(table: str) -> bool:
    """Whether ``table`` is one of the partitions of ``readings`` (a day's or the default)."""
    return table == "readings_default" or _NAME.match(table) is not None


def partition_name(day_start_us: int) -> str:
    day = _EPOCH + timedelta(microseconds=day_start_us)
    return f"readings_p{day:%Y%m%d}"


def day_start(ts_us: int) -> int:
    return ts_us - ts_us % DAY_US


def day_of(name: str) -> int | None:
    """The first µs of the day a partition holds, from its name (``None``: not a day partition)."""
    found = _NAME.match(name)
    if found is None:
        return None
    day = datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=UTC)
    return (day - _EPOCH) // timedelta(microseconds=1)


async def day_partitions(conn: AsyncConnection) -> list[str]:
    """The day partitions of ``readings``, oldest first."""
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'readings'::regclass"
        )
    )
    return sorted(name for (name,) in rows if day_of(name) is not None)


async def ensure_partitions(
    conn: AsyncConnection, now_us: int, days_behind: int = 1, days_ahead: int = 7
) -> list[str]:
    """Create the day partitions from ``days_behind`` days before ``now_us`` to ``days_ahead``
    after; returns those it created. Run in a transaction of its own."""
    if conn.dialect.name != "postgresql":
        return []
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    existing = set(await day_partitions(conn))
    created: list[str] = []
    today = day_start(now_us)
    for offset in range(-days_behind, days_ahead + 1):
        start = today + offset * DAY_US
        name = partition_name(start)
        if name in existing:
            continue
        try:
            async with conn.begin_nested():
                await conn.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF readings "
                        f"FOR VALUES FROM ({start}) TO ({start + DAY_US})"
                    )
                )
        except Exception as exc:  # rows of that day already sit in the default partition
            log.warning("cannot create partition %s: %s", name, str(exc).splitlines()[0])
            continue
        created.append(name)
    return created


async def drop_partitions_before(conn: AsyncConnection, cutoff_us: int) -> list[str]:
    """Drop every day partition that ends at or before ``cutoff_us``; returns their names.
    Run in a transaction of its own."""
    if conn.dialect.name != "postgresql":
        return []
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    dropped = []
    for name in await day_partitions(conn):
        start = day_of(name)
        if start is not None and start + DAY_US <= cutoff_us:
            await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
            dropped.append(name)
    return dropped
