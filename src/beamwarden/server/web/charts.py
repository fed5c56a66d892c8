"""Room: server/web. The charts' data: ``/ui/series`` (a sensor field) and ``/ui/telemetry`` (a
node's heartbeat metric), as compact JSON that uPlot takes as it is.

The browser sends the chart's width in pixels; the server picks the bucket (the smallest "nice"
step that gives at most ``width`` buckets, :func:`~beamwarden.server.services.queries.chart_bucket_s`)
and answers parallel arrays — times in epoch seconds, then avg, min and max per bucket — with a
``null`` at each gap in the data, so the line breaks there instead of bridging it. The range is
``range`` (``1h``, ``24h``, ``7d``: ending now, on the server's clock) or ``since``/``until`` in
epoch seconds (the custom range).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from beamwarden.fleet.poisson import count_interval
from beamwarden.protocol.vocabulary import IDENT_PATTERN
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import SeriesRow
from beamwarden.server.services.queries import (
    MAX_CHART_SPAN,
    MAX_CHART_WIDTH,
    MIN_CHART_WIDTH,
    ChartSeries,
    parse_bucket,
)

from .rendering import WebRoute
from .security import ViewerDep, services_of, with_security_headers

router = APIRouter(route_class=WebRoute, include_in_schema=False)

#: the ranges the buttons offer (any ``parse_bucket`` text up to 366 days is accepted)
RANGES = (("1h", "1 h"), ("24h", "24 h"), ("7d", "7 d"))
DEFAULT_RANGE = "24h"
#: the earliest and latest instants a custom range may name (epoch seconds)
_EARLIEST_S = 0
_LATEST_S = 4_102_444_800  # 2100-01-01

NodeQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=IDENT_PATTERN)]
WidthQuery = Annotated[int, Query(ge=MIN_CHART_WIDTH, le=MAX_CHART_WIDTH)]
RangeQuery = Annotated[str, Query(min_length=2, max_length=8)]
EpochQuery = Annotated[float | None, Query(ge=_EARLIEST_S, le=_LATEST_S)]


@dataclass(frozen=True, slots=True)
class ChartRange:
    since: datetime
    until: datetime


def range_span(text: str) -> timedelta:
    try:
        return timedelta(microseconds=parse_bucket(text))
    except InvalidRequest:
        raise InvalidRequest(
            "range is a number and a unit, 1s to 366d: 1h, 24h, 7d …", code="invalid_range"
        ) from None


def chart_window(
    now: datetime, range_text: str, since: float | None, until: float | None
) -> ChartRange:
    """``since``/``until`` (epoch seconds) when given, else ``range`` ending at ``now``."""
    if since is not None or until is not None:
        end = now if until is None else datetime.fromtimestamp(until, UTC)
        start = (
            end - range_span(range_text) if since is None else datetime.fromtimestamp(since, UTC)
        )
    else:
        end = now
        start = now - range_span(range_text)
    if start >= end:
        raise InvalidRequest("since must be before until", code="invalid_range")
    if end - start > MAX_CHART_SPAN:
        raise InvalidRequest("a chart shows at most 366 days", code="invalid_range")
    return ChartRange(start, end)


def _seconds(us: int) -> float | int:
    return us // 1_000_000 if us % 1_000_000 == 0 else us / 1_000_000


#: a line breaks where buckets are further apart than this many times their usual spacing
GAP_FACTOR = 2.5


def gap_threshold_us(series: ChartSeries) -> int:
    """Buckets further apart than this are a gap: :data:`GAP_FACTOR` times the median spacing of
    the buckets that hold data (a metric sent every minute, charted in 10 s buckets, is not a
    string of gaps), and never less than that many buckets."""
    bucket_us = series.bucket_s * 1_000_000
    starts = [row.bucket_us for row in series.rows]
    steps = sorted(b - a for a, b in itertools.pairwise(starts))
    usual = max(bucket_us, steps[len(steps) // 2] if steps else bucket_us)
    return int(usual * GAP_FACTOR)


def chart_json(
    series: ChartSeries,
    extra: dict[str, Any] | None = None,
    names: tuple[str, ...] = ("avg", "min", "max"),
) -> dict[str, Any]:
    """The buckets as parallel arrays, with a ``null`` point at each gap (see
    :func:`gap_threshold_us`) so that the line breaks there instead of bridging it."""
    bucket_us = series.bucket_s * 1_000_000
    gap = gap_threshold_us(series)
    t: list[float | int] = []
    columns: dict[str, list[float | int | None]] = {name: [] for name in names}
    previous: int | None = None
    for row in series.rows:
        if previous is not None and row.bucket_us - previous > gap:
            t.append(_seconds(previous + bucket_us))
            for values in columns.values():
                values.append(None)
        t.append(_seconds(row.bucket_us))
        for name, values in columns.items():
            values.append(row.values.get(name))
        previous = row.bucket_us
    return {
        "since": series.since.timestamp(),
        "until": series.until.timestamp(),
        "bucket_s": series.bucket_s,
        "points": len(series.rows),
        "t": t,
        **columns,
        **(extra or {}),
    }


def json_response(body: dict[str, Any]) -> Response:
    return with_security_headers(Response(orjson.dumps(body), media_type="application/json"))


#: the confidence of the Garwood band
BAND_CONFIDENCE = 0.95


@lru_cache(maxsize=65_536)
def _garwood(counts: float) -> tuple[float, float]:
    """The exact interval of a Poisson count (cached: a counter's buckets repeat their counts, and
    each interval costs a few milliseconds of gamma quantiles)."""
    ci = count_interval(counts, BAND_CONFIDENCE)
    return ci.lower, ci.upper


def garwood_rows(rows: list[SeriesRow]) -> list[SeriesRow]:
    """Each bucket with ``lo``/``hi``: the exact interval of its mean rate, each CPS reading
    counting for one second (``fleet.geiger``'s sample), from its ``sum`` and ``count``."""
    out = []
    for row in rows:
        total, count = row.values.get("sum"), row.values.get("count")
        lo = hi = None
        if total is not None and count and total >= 0:
            low, high = _garwood(round(float(total), 6))
            lo, hi = low / count, high / count
        out.append(SeriesRow(row.bucket_us, {**row.values, "lo": lo, "hi": hi}))
    return out


@router.get("/ui/series")
async def sensor_series(
    request: Request,
    viewer: ViewerDep,
    sensor_id: Annotated[str, Query(min_length=1, max_length=128)],
    field: Annotated[str, Query(min_length=1, max_length=64)],
    width: WidthQuery,
    node_id: Annotated[str | None, Query(max_length=64, pattern=IDENT_PATTERN)] = None,
    range: RangeQuery = DEFAULT_RANGE,
    since: EpochQuery = None,
    until: EpochQuery = None,
    band: Literal["minmax", "garwood"] = "minmax",
) -> Response:
    """One numeric field of one sensor, bucketed to the chart's width. ``band=garwood`` (a
    Geiger counter's ``cps``) adds ``lo``/``hi``: each bucket's 95 % exact Poisson interval."""
    services = services_of(request)
    window = chart_window(services.clock.now(), range, since, until)
    garwood = band == "garwood"
    series = await services.queries.chart(
        node_id=node_id,
        sensor_id=sensor_id,
        field=field,
        since=window.since,
        until=window.until,
        width=width,
        aggregates="avg,min,max,sum,count" if garwood else "avg,min,max",
    )
    if not garwood:
        return json_response(chart_json(series))
    series = ChartSeries(series.since, series.until, series.bucket_s, garwood_rows(series.rows))
    extra = {"band": "garwood", "confidence": BAND_CONFIDENCE}
    return json_response(chart_json(series, extra, ("avg", "min", "max", "lo", "hi")))


@router.get("/ui/telemetry")
async def telemetry_series(
    request: Request,
    viewer: ViewerDep,
    node_id: NodeQuery,
    metric: Annotated[str, Query(min_length=1, max_length=64)],
    width: WidthQuery,
    range: RangeQuery = DEFAULT_RANGE,
    since: EpochQuery = None,
    until: EpochQuery = None,
) -> Response:
    """One numeric heartbeat metric of one node, bucketed to the chart's width."""
    services = services_of(request)
    window = chart_window(services.clock.now(), range, since, until)
    series = await services.queries.telemetry_chart(
        node_id=node_id, metric=metric, since=window.since, until=window.until, width=width
    )
    return json_response(chart_json(series))
