"""Room: server/web. One node's page: identity and tags, status now and over the last 24 hours,
charts of its heartbeat metrics, its sensors with their newest values and charts, its events.

The status history is computed from the node's heartbeats (the ``telemetry`` rows): at every
instant the status is what :func:`~beamwarden.fleet.node_status` would have said then, against
the node's current interval (:func:`~beamwarden.fleet.status.status_history`). The activity log
holds no status changes (a status is computed, never stored); its events of the node are listed
below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from beamwarden.fleet.status import DEGRADED_INTERVALS, StatusSpan, status_history
from beamwarden.protocol import NodeStatus
from beamwarden.protocol.vocabulary import IDENT_RE
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import EventFilter, from_us
from beamwarden.server.services.container import Services

from .charts import DEFAULT_RANGE, RANGES
from .rendering import WebRoute, render
from .security import ViewerDep, services_of
from .sensor_cards import sensor_card

router = APIRouter(route_class=WebRoute, include_in_schema=False)

#: the heartbeat metrics charted, in this order, when the node reports them
TELEMETRY_CHARTS = (
    ("cpu_percent", "CPU", "%"),
    ("mem_percent", "Memory", "%"),
    ("disk_percent", "Disk", "%"),
    ("queue_depth", "Queue depth", "readings"),
    ("push_errors_total", "Push errors", "total"),
    ("queue_oldest_age_s", "Oldest queued reading", "s"),
    ("readings_lost_total", "Readings lost", "total"),
    ("dead_letters", "Dead letters", ""),
)
HISTORY_SPAN = timedelta(hours=24)
EVENTS_SHOWN = 25


@dataclass(frozen=True, slots=True)
class MetricChart:
    metric: str
    title: str
    unit: str
    value: Any
    url: str


@dataclass(frozen=True, slots=True)
class HistoryBar:
    """A status span placed on a 0–1000 wide bar (SVG user units: no inline style under CSP)."""

    x: float
    width: float
    span: StatusSpan


def checked_node_id(node_id: str) -> str:
    if IDENT_RE.fullmatch(node_id) is None:
        raise InvalidRequest(
            "a node id is 1–64 of a-z 0-9 . _ - starting with a letter or digit",
            code="invalid_node_id",
        )
    return node_id


def metric_charts(node_id: str, latest: dict[str, Any] | None) -> list[MetricChart]:
    latest = latest or {}
    numeric = {
        k: v for k, v in latest.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    charts = []
    for metric, title, unit in TELEMETRY_CHARTS:
        if metric in numeric or not numeric:
            url = "/ui/telemetry?" + urlencode({"node_id": node_id, "metric": metric})
            charts.append(MetricChart(metric, title, unit, numeric.get(metric), url))
    return charts


async def status_bars(
    services: Services, node_id: str, interval: float, now: datetime
) -> tuple[list[HistoryBar], list[StatusSpan]]:
    since = now - HISTORY_SPAN
    lookback = since - DEGRADED_INTERVALS * timedelta(seconds=interval)
    times = [from_us(us) for us in await services.queries.heartbeat_times(node_id, lookback, now)]
    before = max((t for t in times if t < since), default=None)
    spans = status_history(times, interval, since, now, before)
    total = HISTORY_SPAN.total_seconds()
    bars = [
        HistoryBar(
            (s.start - since).total_seconds() / total * 1000,
            (s.end - s.start).total_seconds() / total * 1000,
            s,
        )
        for s in spans
    ]
    changes = [s for s in reversed(spans) if s.status is not NodeStatus.ONLINE][:20]
    return bars, changes


@router.get("/nodes/{node_id}")
async def node_page(request: Request, viewer: ViewerDep, node_id: str) -> Response:
    services = services_of(request)
    view = await services.registry.get(checked_node_id(node_id))
    now = services.clock.now()
    row = view.row
    latest = await services.queries.latest_metrics(node_id)
    bars, changes = await status_bars(services, node_id, row.interval_seconds, now)
    sensors = [sensor_card(s, now) for s in await services.queries.sensors(node_id, 200)]
    events = await services.queries.events(EventFilter(node_id=node_id), EVENTS_SHOWN, None)
    return render(
        request,
        "node.html",
        {
            "view": view,
            "row": row,
            "metrics": metric_charts(node_id, latest),
            "latest_metrics": latest or {},
            "bars": bars,
            "changes": changes,
            "history_hours": int(HISTORY_SPAN.total_seconds() // 3600),
            "sensors": sensors,
            "events": events.items,
            "more_events": events.next_cursor is not None,
            "ranges": RANGES,
            "default_range": DEFAULT_RANGE,
            "from_us": from_us,
        },
        viewer=viewer,
    )
