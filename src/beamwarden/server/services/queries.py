"""Room: server/services. Reading the data back: raw readings, bucketed series, the activity log,
and what the dashboard's charts and pages read (series sized to a chart's width in pixels, a node's
heartbeat metrics, each sensor's newest reading)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from beamwarden.protocol import is_fleet_wide
from beamwarden.protocol.vocabulary import FIELD_NAME_RE
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import (
    EventFilter,
    EventRow,
    ReadingFilter,
    ReadingRow,
    SensorLatest,
    SeriesQuery,
    SeriesRow,
    TelemetryQuery,
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


#: the bucket widths a chart may get, in seconds: whole minutes from a minute up (so a long range
#: is summed from the rollups), and each a divisor of the next larger day-aligned unit
CHART_STEPS_S = (
    1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10_800, 21_600, 43_200,
    86_400, 172_800, 604_800,
)  # fmt: skip
#: the widest chart, in pixels (a 4K screen); the narrowest
MAX_CHART_WIDTH = 4000
MIN_CHART_WIDTH = 16
#: the longest range a chart shows
MAX_CHART_SPAN = timedelta(days=366)
_DAY_S = 86_400


def chart_buckets(since_us: int, until_us: int, bucket_s: int) -> int:
    """How many buckets of ``bucket_s`` (aligned to the epoch) ``[since, until)`` touches."""
    bucket_us = bucket_s * 1_000_000
    origin = since_us - since_us % bucket_us
    return -(-(until_us - origin) // bucket_us)


def chart_bucket_s(since_us: int, until_us: int, width: int) -> int:
    """The bucket (seconds) for a chart ``width`` pixels wide: the smallest step of
    :data:`CHART_STEPS_S` that gives at most ``width`` buckets over the range (past a week: whole
    days), so a chart never gets more points than it has pixels."""
    if since_us >= until_us or width < 1:
        raise ValueError("an empty range or width")
    for step in CHART_STEPS_S:
        if chart_buckets(since_us, until_us, step) <= width:
            return step
    days = max(1, -(-(until_us - since_us) // (width * _DAY_S * 1_000_000)))
    while chart_buckets(since_us, until_us, days * _DAY_S) > width:
        days += 1
    return days * _DAY_S


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """Buckets for a chart: avg/min/max per bucket of ``bucket_s``, oldest first."""

    since: datetime
    until: datetime
    bucket_s: int
    rows: list[SeriesRow]


def chart_range(since: datetime, until: datetime, width: int) -> int:
    """Check a chart's range and width; its bucket in seconds."""
    if since >= until:
        raise InvalidRequest("since must be before until", code="invalid_range")
    if until - since > MAX_CHART_SPAN:
        raise InvalidRequest("a chart shows at most 366 days", code="invalid_range")
    if not MIN_CHART_WIDTH <= width <= MAX_CHART_WIDTH:
        raise InvalidRequest(
            f"width is {MIN_CHART_WIDTH} to {MAX_CHART_WIDTH} pixels", code="invalid_width"
        )
    return chart_bucket_s(to_us(since), to_us(until), width)


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

    # -- the dashboard ---------------------------------------------------------------------------

    async def chart(
        self,
        *,
        node_id: str | None,
        sensor_id: str,
        field: str,
        since: datetime,
        until: datetime,
        width: int,
        aggregates: str = "avg,min,max",
    ) -> ChartSeries:
        """One sensor field for a chart ``width`` pixels wide: at most ``width`` buckets."""
        bucket_s = chart_range(since, until, width)
        page = await self.series(
            node_id=node_id,
            sensor_id=sensor_id,
            field=field,
            since=since,
            until=until,
            bucket=f"{bucket_s}s",
            agg=aggregates,
            limit=width,
            cursor=None,
        )
        return ChartSeries(since, until, bucket_s, page.items)

    async def telemetry_chart(
        self, *, node_id: str, metric: str, since: datetime, until: datetime, width: int
    ) -> ChartSeries:
        """One numeric heartbeat metric of a node for a chart ``width`` pixels wide."""
        if FIELD_NAME_RE.fullmatch(metric) is None:
            raise InvalidRequest("metric is a name such as cpu_percent", code="invalid_metric")
        bucket_s = chart_range(since, until, width)
        rows = await self._readings.telemetry_series(
            TelemetryQuery(
                node_id=node_id,
                metric=metric,
                since_us=to_us(since),
                until_us=to_us(until),
                bucket_us=bucket_s * 1_000_000,
                aggregates=("avg", "min", "max"),
                limit=width,
            )
        )
        return ChartSeries(since, until, bucket_s, rows)

    async def heartbeat_times(
        self, node_id: str, since: datetime, until: datetime, limit: int = 20_000
    ) -> list[int]:
        """Receive times (epoch µs) of the node's heartbeats in ``[since, until)``."""
        return await self._readings.heartbeat_times(node_id, to_us(since), to_us(until), limit)

    async def latest_metrics(self, node_id: str) -> dict[str, Any] | None:
        return await self._readings.latest_metrics_of(node_id)

    async def sensors(self, owner: str | None = None, limit: int = 2000) -> list[SensorLatest]:
        """Sensors with their newest reading: a node's (``owner``), fleet-wide ones (``''``) or
        all (``None``)."""
        return await self._readings.sensors_latest(owner, limit)
