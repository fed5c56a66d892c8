"""Room: server/services. Reading the data back: raw readings, bucketed series, the activity log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from beamwarden.protocol import is_fleet_wide
from beamwarden.protocol.vocabulary import FIELD_NAME_RE
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import (
    EventFilter,
    EventRow,
    ReadingFilter,
    ReadingRow,
    SeriesQuery,
    SeriesRow,
    to_us,
)
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.pagination import decode_cursor, encode_cursor
from beamwarden.server.services.ports import EventStore, ReadingStore

AGGREGATES = ("avg", "min", "max", "count", "sum")
_BUCKET_RE = re.compile(r"([1-9][0-9]{0,8})(ms|s|m|h|d)")
_UNIT_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
#: the series window when ``since`` is not given
DEFAULT_SERIES_WINDOW = timedelta(hours=24)


def parse_bucket(text: str) -> int:
    """``"60s"``, ``"5m"``, ``"1h"``, ``"1d"`` → microseconds (at least 1 s, at most 366 days)."""
    match = _BUCKET_RE.fullmatch(text)
    if match is None:
        raise InvalidRequest(
            "bucket is a number and a unit: 500ms, 60s, 5m, 1h, 1d", code="invalid_bucket"
        )
    us = int(match[1]) * _UNIT_US[match[2]]
    if not 1_000_000 <= us <= 366 * 86_400_000_000:
        raise InvalidRequest("bucket must be between 1s and 366d", code="invalid_bucket")
    return us


def parse_aggregates(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    unknown = [a for a in names if a not in AGGREGATES]
    if not names or unknown:
        raise InvalidRequest(
            f"agg is a comma-separated subset of {','.join(AGGREGATES)}", code="invalid_aggregate"
        )
    return names


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageOf(Generic[T]):
    items: list[T]
    next_cursor: str | None


class ReadingQueries:
    def __init__(self, readings: ReadingStore, events: EventStore, clock: Clock, max_buckets: int):
        self._readings = readings
        self._events = events
        self._clock = clock
        self._max_buckets = max_buckets

    async def readings(
        self, flt: ReadingFilter, limit: int, cursor: str | None
    ) -> PageOf[ReadingRow]:
        after = None
        if cursor is not None:
            ts_us, row_id = decode_cursor("readings", cursor, (int, int))
            after = (ts_us, row_id)
        rows = await self._readings.list_readings(flt, limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor("readings", [rows[-1].ts_us, rows[-1].id]) if more else None
        return PageOf(rows, next_cursor)

    def export(self, flt: ReadingFilter) -> AsyncIterator[ReadingRow]:
        return self._readings.iter_readings(flt)

    async def count(self, flt: ReadingFilter) -> int:
        return await self._readings.count_readings(flt)

    async def series(
        self,
        *,
        node_id: str | None,
        sensor_id: str,
        field: str,
        since: datetime | None,
        until: datetime | None,
        bucket: str,
        agg: str,
        limit: int,
        cursor: str | None,
    ) -> PageOf[SeriesRow]:
        if FIELD_NAME_RE.fullmatch(field) is None:
            raise InvalidRequest(
                "field is a payload field name such as temperature_c", code="invalid_field"
            )
        if node_id is None and not is_fleet_wide(sensor_id):
            raise InvalidRequest(
                "node_id is required unless sensor_id names a fleet-wide device (ble:…, govee:…)",
                code="node_id_required",
            )
        bucket_us = parse_bucket(bucket)
        aggregates = parse_aggregates(agg)
        until = until or self._clock.now()
        since = since or until - DEFAULT_SERIES_WINDOW
        if since >= until:
            raise InvalidRequest("since must be before until", code="invalid_range")
        after_bucket = None
        if cursor is not None:
            (after_bucket,) = decode_cursor("series", cursor, (int,))
        limit = min(limit, self._max_buckets)
        query = SeriesQuery(
            node_id=node_id,
            sensor_id=sensor_id,
            field=field,
            since_us=to_us(since),
            until_us=to_us(until),
            bucket_us=bucket_us,
            aggregates=aggregates,
            limit=limit + 1,
            after_bucket_us=after_bucket,
        )
        rows = await self._readings.series(query)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor("series", [rows[-1].bucket_us]) if more else None
        return PageOf(rows, next_cursor)

    async def events(self, flt: EventFilter, limit: int, cursor: str | None) -> PageOf[EventRow]:
        before = None
        if cursor is not None:
            (before,) = decode_cursor("events", cursor, (int,))
        rows = await self._events.list_events(flt, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return PageOf(rows, encode_cursor("events", [rows[-1].id]) if more else None)
