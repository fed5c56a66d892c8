"""Room: server/services. A Geiger stream's window summarised from the stored readings: CPS
statistics, CPM, dose and the rate's exact (Garwood) interval (``fleet.geiger.summarise``).

Used by ``GET /api/geiger/summary``, ``beamwarden geiger`` and the dashboard's sensors page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from beamwarden.fleet.geiger import GeigerSummary, summarise
from beamwarden.fleet.poisson import AnalyticsError
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import ReadingFilter, from_us, to_us
from beamwarden.server.services.queries import ReadingQueries

#: the longest Geiger summary window (a week of 1 Hz readings is 604 800 rows)
MAX_GEIGER_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class GeigerWindow:
    summary: GeigerSummary
    tube: str | None  # the tube asked for, else the one the readings name


async def geiger_window(
    queries: ReadingQueries,
    node: str,
    sensor_id: str,
    span: timedelta,
    now: datetime,
    *,
    tube: str | None = None,
    confidence: float = 0.95,
    dead_time_s: float | None = None,
) -> GeigerWindow:
    """The readings of ``[now − span, now]`` of one Geiger stream, summarised."""
    if span > MAX_GEIGER_WINDOW:
        raise InvalidRequest("window is at most 7d", code="invalid_window")
    flt = ReadingFilter(
        node_id=node,
        sensor_id=sensor_id,
        since_us=to_us(now - span),
        until_us=to_us(now) + 1,
    )
    cps: list[tuple[datetime, float]] = []
    device: list[tuple[datetime, float]] = []
    tube_seen: str | None = None
    async for row in queries.export(flt):
        payload = row.payload
        when = from_us(row.ts_us)
        value = payload.get("cps")
        if isinstance(value, int | float) and not isinstance(value, bool):
            cps.append((when, float(value)))
        dose = payload.get("usv_per_hour")
        if isinstance(dose, int | float) and not isinstance(dose, bool):
            device.append((when, float(dose)))
        if isinstance(payload.get("tube_type"), str):
            tube_seen = payload["tube_type"]
    try:
        summary = summarise(
            cps,
            now,
            span,
            tube=tube or tube_seen,
            device_usv_per_hour=device,
            dead_time_s=dead_time_s,
            confidence=confidence,
        )
    except AnalyticsError as exc:
        raise InvalidRequest(str(exc), code="invalid_analytics") from None
    return GeigerWindow(summary, tube or tube_seen)
