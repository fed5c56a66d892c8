"""Room: server/store (adapter). The readings row as the writers build it; imports nothing.

Kept apart from :mod:`.schema` (SQLAlchemy) so the SQLite writer's child process starts without
importing SQLAlchemy.
"""

from __future__ import annotations

#: Numeric payload fields stored in columns per sensor; more are kept only in the payload.
SLOTS = 8

#: Readings' column order for inserts; the hot path builds tuples in exactly this order.
READING_COLUMNS: tuple[str, ...] = (
    "sensor_ref",
    "node_ref",
    "source_ref",
    "ts_us",
    "received_us",
    "flags",
    "reading_id",
    "payload",
    *(f"v{slot}" for slot in range(SLOTS)),
)
