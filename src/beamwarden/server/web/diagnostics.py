"""Room: server/web. The diagnostics page: database, ingestion, queues, bridge, leases, versions.

Everything here is what an operator needs when something is slow or stuck, and nothing that is a
secret: the database is named by driver, host, port and database (never the user or password),
the MQTT broker by ``host:port``, and error texts pass through :func:`.redact.scrub`.

The ingestion rate is measured by sampling the server's Prometheus counters each time the page
(or its live panel, ``GET /ui/diagnostics``, every few seconds) is drawn: the rate over the
samples of the last minute. Counters are this process's, since it started.
"""

from __future__ import annotations

import platform
import sqlite3
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry
from starlette.responses import Response

from beamwarden import __version__
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.services.leases import node_of
from beamwarden.server.services.ports import DatabaseInfo

from .alerts import alert_service
from .forms import page
from .redact import database_target, scrub
from .rendering import WebRoute, render
from .security import ViewerDep, services_of, settings_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)

#: the window the ingestion rate is measured over
RATE_WINDOW = timedelta(seconds=60)
#: nodes shown in each "top" table
TOP_NODES = 10
#: how long the nodes' latest metrics are reused between two draws of the page
METRICS_CACHE = timedelta(seconds=15)


def counter_total(registry: CollectorRegistry, name: str, suffix: str = "_total") -> float:
    """The sum over every label set of one metric's sample (a counter's ``_total``, a
    histogram's ``_count`` or ``_sum``)."""
    total = 0.0
    for metric in registry.collect():
        if metric.name != name:
            continue
        for sample in metric.samples:
            if sample.name == name + suffix:
                total += sample.value
    return total


class RateSampler:
    """Counter samples ``(time, value)`` of the last window; the rate between the first and last."""

    def __init__(self, window: timedelta = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[datetime, float]] = deque()

    def sample(self, now: datetime, value: float) -> tuple[float, float] | None:
        """Add a sample; return the rate per second and the seconds it was measured over (about
        the window, longer when nobody looked for a while); None: not enough data yet."""
        if self._samples and value < self._samples[-1][1]:
            self._samples.clear()  # a counter went back: another registry (a restart in tests)
        self._samples.append((now, value))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        if len(self._samples) < 2:
            return None
        (t0, v0), (t1, v1) = self._samples[0], self._samples[-1]
        span = (t1 - t0).total_seconds()
        return ((v1 - v0) / span, span) if span > 0 else None


@dataclass(frozen=True, slots=True)
class LeaseLine:
    name: str
    holder: str
    epoch: int
    expires_in: float
    held_here: bool


def _samplers(request: Request) -> dict[str, RateSampler]:
    samplers: dict[str, RateSampler] | None = getattr(request.app.state, "web_rates", None)
    if samplers is None:
        samplers = {"accepted": RateSampler(), "received": RateSampler()}
        request.app.state.web_rates = samplers
    return samplers


async def _database(request: Request) -> dict[str, Any]:
    services = services_of(request)
    out: dict[str, Any] = {
        "backend": request.app.state.backend,
        "target": database_target(settings_of(request).database_url),
    }
    try:
        out["latency_ms"] = await services.store.ping() * 1000
        if isinstance(services.store, DatabaseInfo):
            out.update(await services.store.database_info())
        out["status"] = "ok"
    except StoreUnavailable as exc:
        out["status"] = "unavailable"
        out["error"] = scrub(exc.message, [settings_of(request).database_url])
    if out["backend"] == "sqlite":
        out["library"] = sqlite3.sqlite_version
    return out


def _ingestion(request: Request) -> dict[str, Any]:
    services = services_of(request)
    settings = settings_of(request)
    registry = services.metrics.registry
    now = services.clock.now()
    accepted = counter_total(registry, "beamwarden_readings_accepted")
    received = counter_total(registry, "beamwarden_readings_received")
    samplers = _samplers(request)
    commits = counter_total(registry, "beamwarden_ingest_commit_duration_seconds", "_count")
    commit_s = counter_total(registry, "beamwarden_ingest_commit_duration_seconds", "_sum")
    groups = counter_total(registry, "beamwarden_ingest_commit_batches", "_sum")
    return {
        "accepted": accepted,
        "received": received,
        "duplicate": counter_total(registry, "beamwarden_readings_duplicate"),
        "rejected": counter_total(registry, "beamwarden_readings_rejected"),
        "batches": counter_total(registry, "beamwarden_ingest_batches"),
        "accepted_rate": samplers["accepted"].sample(now, accepted),
        "received_rate": samplers["received"].sample(now, received),
        "pending": services.committer.pending_readings,
        "max_pending": settings.ingest_max_pending_readings,
        "writers": settings.writers,
        "commits": commits,
        "commit_mean_ms": commit_s / commits * 1000 if commits else None,
        "group_mean": groups / commits if commits else None,
        "heartbeats_buffered": services.heartbeats.buffered,
        "heartbeats_dropped": services.heartbeats.dropped,
        "db_errors": counter_total(registry, "beamwarden_database_errors"),
    }


async def _latest_metrics(request: Request) -> dict[str, dict[str, float]]:
    """Each node's latest telemetry metrics, read at most every ``METRICS_CACHE`` (many open
    pages refreshing every few seconds make one query, not one each)."""
    now = services_of(request).clock.now()
    cached: tuple[datetime, dict[str, dict[str, float]]] | None = getattr(
        request.app.state, "web_metrics", None
    )
    if cached is not None and timedelta(0) <= now - cached[0] < METRICS_CACHE:
        return cached[1]
    try:
        metrics = await alert_service(request).latest_metrics()
    except StoreUnavailable:
        return {}
    request.app.state.web_metrics = (now, metrics)
    return metrics


async def _queues(request: Request) -> dict[str, list[tuple[str, float]]]:
    metrics = await _latest_metrics(request)

    def top(name: str) -> list[tuple[str, float]]:
        values = [(node, m[name]) for node, m in metrics.items() if m.get(name, 0) > 0]
        return sorted(values, key=lambda pair: (-pair[1], pair[0]))[:TOP_NODES]

    return {"depth": top("queue_depth"), "oldest": top("queue_oldest_age_s")}


def _local_keepers(request: Request) -> dict[str, bool]:
    """The server leases this replica competes for, and whether it holds each."""
    held: dict[str, bool] = {}
    for name, job in (getattr(request.app.state, "jobs", None) or {}).items():
        held[name] = job.keeper.held
    keeper = alert_service(request).keeper
    held[keeper.name] = keeper.held
    bridge = getattr(request.app.state, "bridge", None)
    if bridge is not None:
        held[bridge.keeper.name] = bridge.keeper.held
    return held


async def _leases(request: Request) -> tuple[list[LeaseLine], dict[str, bool]]:
    services = services_of(request)
    now = services.clock.now()
    local = _local_keepers(request)
    try:
        leases = await services.leases.list_leases()
    except StoreUnavailable:
        leases = []
    lines = [
        LeaseLine(
            lease.name,
            lease.holder.describe(),
            lease.epoch,
            lease.time_left(now).total_seconds(),
            local.get(lease.name, False),
        )
        for lease in sorted(leases, key=lambda lease: lease.name)
        if node_of(lease.name) is None
    ]
    return lines, local


def _bridge(request: Request) -> dict[str, Any] | None:
    bridge = getattr(request.app.state, "bridge", None)
    if bridge is None:
        return None
    stats = bridge.relay.stats.as_dict()
    url = settings_of(request).bridge_mqtt_url or ""
    stats["last_error"] = scrub(stats.get("last_error"), [url])
    return {
        "broker": bridge.config.broker,
        "tls": bridge.config.tls,
        "lease": bridge.config.lease_name,
        "held": bridge.keeper.held,
        "ingesting": bridge.ingesting,
        "subscribed": bridge.subscribed.is_set(),
        "protocol": None if bridge.protocol is None else str(bridge.protocol.name),
        "buffered": bridge.relay.buffered,
        "stats": stats,
    }


async def _context(request: Request) -> dict[str, Any]:
    database = await _database(request)
    leases, local = await _leases(request)
    return {
        "database": database,
        "ingest": _ingestion(request),
        "queues": await _queues(request),
        "leases": leases,
        "local_leases": local,
        "bridge": _bridge(request),
        "versions": {
            "beamwarden": __version__,
            "python": f"{platform.python_version()} ({platform.python_implementation()})",
            "database": database.get("version") or "",
            "platform": platform.platform(terse=True),
        },
    }


@router.get("/diagnostics")
async def diagnostics_page(request: Request, viewer: ViewerDep) -> Response:
    return page(request, "diagnostics.html", await _context(request), viewer)


@router.get("/ui/diagnostics")
async def diagnostics_panel(request: Request, viewer: ViewerDep) -> Response:
    return render(request, "_diagnostics.html", await _context(request), viewer=viewer)
