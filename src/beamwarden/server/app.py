"""Room: server (wiring). ``create_app(settings)``: the only place that wires concrete adapters.

Nothing is built at import time: no settings, no engine, no connection. The lifespan opens the
store (waiting up to ``db_startup_timeout_s`` for the database), runs the migrations, starts the
group-commit writers, the heartbeat flusher and the sweeper, and stops them in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from beamwarden import __version__
from beamwarden.obs import MetricRegistry, Observability, RequestMetricsMiddleware
from beamwarden.obs.exporters import (
    Exporter,
    HttpJsonExporter,
    LokiExporter,
    OtlpExporter,
    PushgatewayExporter,
)
from beamwarden.protocol import IngestResult
from beamwarden.server import web
from beamwarden.server.api import alerts as alert_routes
from beamwarden.server.api import checkins as checkin_routes
from beamwarden.server.api import (
    devices,
    events,
    health,
    leases,
    metrics,
    nodes,
    readings,
    series,
    telemetry,
)
from beamwarden.server.api import retention as retention_routes
from beamwarden.server.api.alerts import Alerting
from beamwarden.server.api.errors import install_error_handlers
from beamwarden.server.api.middleware import RequestContext
from beamwarden.server.api.obs_mount import GuardedObs
from beamwarden.server.bridge import MqttBridge, bridge_config
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.notify import AppriseSender
from beamwarden.server.presence import open_presence
from beamwarden.server.records import to_us
from beamwarden.server.services.alerts import AlertConfig, AlertService
from beamwarden.server.services.clock import Clock, SystemClock
from beamwarden.server.services.container import ServiceConfig, Services
from beamwarden.server.services.ingest import DiscardSink
from beamwarden.server.services.leases import LeaseService, Presence
from beamwarden.server.services.notifications import NotificationService, NotifyConfig
from beamwarden.server.services.retention import (
    READING_KEYS_LEASE,
    RETENTION_LEASE,
    Job,
    LeasedJob,
    RetentionPolicy,
    RetentionSweeper,
    ServerLogRecorder,
    StillHeld,
    reading_keys_job,
    replica_holder,
)
from beamwarden.server.services.stream_retention import StreamRetentionService
from beamwarden.server.services.users import UserConfig
from beamwarden.server.settings import ServerSettings, load_settings
from beamwarden.server.store import SqlStore, StoreConfig, open_store, upgrade
from beamwarden.server.store.alerts import AlertStore
from beamwarden.server.store.devices import DeviceSqlStore
from beamwarden.server.store.retention import SqlRetention
from beamwarden.server.store.stream_retention import StreamRetentionStore
from beamwarden.server.store.users import UserSqlStore

log = logging.getLogger("beamwarden.server")


def backend_name(url: str) -> str:
    return "postgresql" if url.startswith(("postgres", "postgresql")) else "sqlite"


def service_config(settings: ServerSettings) -> ServiceConfig:
    return ServiceConfig(
        max_batch=settings.max_batch,
        ingest_writers=settings.writers,
        ingest_max_pending_readings=settings.ingest_max_pending_readings,
        token_cache_s=settings.token_cache_s,
        heartbeat_buffer_max=settings.heartbeat_buffer_max,
        series_max_buckets=settings.series_max_buckets,
        users=UserConfig(
            session_idle_s=settings.session_idle_s,
            session_max_s=settings.session_max_s,
            login_max_failures=settings.login_max_failures,
            login_window_s=settings.login_window_s,
        ),
    )


def store_config(settings: ServerSettings) -> StoreConfig:
    return StoreConfig(
        url=settings.database_url,
        pool_size=settings.db_pool_size,
        connect_timeout=settings.db_connect_timeout_s,
        query_timeout=settings.db_query_timeout_s,
        opaque_id_window_s=settings.opaque_id_window_s,
        sqlite_writer=settings.sqlite_writer,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_cache_mib=settings.sqlite_cache_mib,
        sqlite_checkpoint_pages=settings.sqlite_checkpoint_pages,
        sqlite_mmap_mib=settings.sqlite_mmap_mib,
        postgres_jit=settings.postgres_jit,
    )


async def wait_for_database(settings: ServerSettings) -> None:
    """The start-up probe: migrate (or just connect) once the database answers, or give up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.db_startup_timeout_s
    delay = 0.2
    while True:
        try:
            if settings.migrate_on_start:
                await asyncio.to_thread(upgrade, settings.database_url)
            return
        except Exception as exc:  # the database may still be starting: retry until the deadline
            if loop.time() + delay > deadline:
                raise StoreUnavailable(f"the database did not answer at start: {exc}") from exc
            log.warning("waiting for the database: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _leased_jobs(
    services: Services,
    store: SqlStore,
    presence: Presence,
    settings: ServerSettings,
    retention: StreamRetentionService,
) -> list[LeasedJob]:
    """The periodic jobs that run once per fleet, each in the replica holding its lease."""
    leases = LeaseService(presence, services.clock, ServerLogRecorder())
    holder = replica_holder()
    every = timedelta(seconds=settings.retention_sweep_s)
    sweeper = RetentionSweeper(
        SqlRetention(store.engine, settings.db_query_timeout_s),
        services.clock,
        RetentionPolicy(
            settings.events_retention_days,
            settings.telemetry_retention_days,
            settings.retention_batch,
        ),
    )

    async def prune(before_us: int) -> int:
        try:
            return await store.prune_reading_keys(before_us)
        except StoreUnavailable:
            services.metrics.db_errors.labels("prune_reading_keys").inc()
            raise

    window = timedelta(seconds=settings.opaque_id_window_s)
    prune_job = reading_keys_job(prune, services.clock, window)
    return [
        LeasedJob(leases, RETENTION_LEASE, holder, sweeper.sweep, every),
        LeasedJob(leases, READING_KEYS_LEASE, holder, prune_job, every),
        LeasedJob(
            leases, "sweeper:readings", holder, _readings_upkeep(store, services, retention), every
        ),
        LeasedJob(
            leases,
            "rollups",
            holder,
            _rollups(store, services),
            timedelta(seconds=settings.rollup_interval_s),
        ),
    ]


def _rollups(store: SqlStore, services: Services) -> Job:
    """Summarise the minutes readings commits marked (store/rollups.py), a bounded batch a step."""

    batch = ROLLUP_BATCH[store.dialect]

    async def job(still_held: StillHeld) -> int:
        done = 0
        for _ in range(ROLLUP_STEPS):
            step = await store.roll_up(to_us(services.clock.now()), batch)
            done += step
            if step < batch or not await still_held():
                break
        return done

    return job


#: minutes one rollup step takes, and steps per tick (the rest waits for the next). SQLite's
#: readings writer waits for the step's write transaction, which grows with its minutes
#: (``bench_rollup_lock.py``: 12 ms for 500, 23 ms for 2000)
ROLLUP_BATCH = {"sqlite": 500, "postgresql": 2000}
ROLLUP_STEPS = 50


def _readings_upkeep(store: SqlStore, services: Services, retention: StreamRetentionService) -> Job:
    """PostgreSQL's day partitions of readings, a week ahead; then per-stream retention of raw
    readings and rollups (services/stream_retention.py)."""

    async def job(still_held: StillHeld) -> int:
        now = to_us(services.clock.now())
        done = len(await store.ensure_partitions(now, days_behind=1, days_ahead=7))
        report = await retention.sweep()
        if report.partitions or report.raw_rows or report.minute_rows or report.hour_rows:
            log.info(
                "retention: %d partitions, %d readings, %d minute and %d hour rollups forgotten",
                report.partitions,
                report.raw_rows,
                report.minute_rows,
                report.hour_rows,
            )
        return done + report.partitions + report.raw_rows + report.minute_rows + report.hour_rows

    return job


def build_retention(
    settings: ServerSettings, services: Services, store: SqlStore
) -> StreamRetentionService:
    """Per-stream retention on its store (issue 7)."""
    return StreamRetentionService(
        StreamRetentionStore(store.engine, settings.db_query_timeout_s),
        services.clock,
        services.activity,
        settings.retention_policy(),
    )


def build_alerting(
    settings: ServerSettings, services: Services, store: SqlStore, clock: Clock
) -> Alerting:
    """The alert evaluator, check-ins and notifications on their adapters (issue 7)."""
    alert_store = AlertStore(store.engine, settings.db_query_timeout_s)
    sender = AppriseSender(settings.notify_urls, settings.notify_timeout_s)
    notify = NotificationService(
        alert_store,
        sender,
        clock,
        NotifyConfig(
            rate_per_minute=settings.notify_rate_per_minute,
            max_attempts=settings.notify_max_attempts,
            link_base=settings.notify_link_base,
            title_template=settings.notify_title_template,
            body_template=settings.notify_body_template,
        ),
    )
    config = AlertConfig(
        interval_s=settings.alert_interval_s,
        settle_s=settings.alert_settle_s,
        late_s=settings.alert_late_s,
        rules_file=settings.alert_rules_file,
        node_status_rule=settings.alert_node_status,
    )
    alerts = AlertService(
        alert_store,
        alert_store,
        services.registry,
        services.activity,
        services.leases,
        notify,
        clock,
        config,
        fleet=services.fleet,
    )
    return Alerting(alerts)


def _obs_exporters(settings: ServerSettings) -> list[Exporter]:
    """The exporters the ``obs_export_*_url`` settings ask for (none by default)."""
    exporters: list[Exporter] = []
    if settings.obs_export_otlp_url:
        exporters.append(OtlpExporter(settings.obs_export_otlp_url, service_name="beamwarden"))
    if settings.obs_export_loki_url:
        exporters.append(LokiExporter(settings.obs_export_loki_url, service="beamwarden"))
    if settings.obs_export_pushgateway_url:
        exporters.append(
            PushgatewayExporter(
                settings.obs_export_pushgateway_url,
                job="beamwarden",
                grouping={"instance": socket.gethostname()},
            )
        )
    if settings.obs_export_http_url:
        exporters.append(HttpJsonExporter(settings.obs_export_http_url))
    return exporters


def _open_obs(
    settings: ServerSettings, registry: MetricRegistry | None = None
) -> Observability | None:
    """The server's own logs and metric history (``/obs/``): the root logger's records from now on."""
    if settings.obs_store == "off":
        return None
    if settings.obs_store == "sqlite":
        obs = Observability.sqlite(settings.obs_path, registry=registry)
    else:
        obs = Observability.ring(registry=registry)
    for exporter in _obs_exporters(settings):
        obs.add_exporter(exporter)
    obs.install(level=settings.log_level)
    obs.start()
    return obs


def create_app(settings: ServerSettings, clock: Clock | None = None) -> FastAPI:
    """Build the server. Adapters are opened in the app's lifespan, not here."""
    clock = clock or SystemClock()
    server_metrics = ServerMetrics()
    obs_registry = (
        MetricRegistry() if settings.obs_request_metrics and settings.obs_store != "off" else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await wait_for_database(settings)
        store = await open_store(store_config(settings))
        presence = open_presence(
            settings.presence_url, settings.presence_prefix, settings.presence_timeout_s
        )
        sink = DiscardSink() if settings.ingest_sink == "discard" else None
        services = Services.build(
            store,
            clock,
            server_metrics,
            service_config(settings),
            presence,
            sink,
            device_store=DeviceSqlStore(store.engine, settings.db_query_timeout_s),
            user_store=UserSqlStore(store.engine, settings.db_query_timeout_s),
        )
        app.state.services = services
        app.state.alerting = build_alerting(settings, services, store, clock)
        await app.state.alerting.alerts.start()
        obs = _open_obs(settings, obs_registry)
        app.state.obs = obs
        services.committer.start()
        app.state.retention = build_retention(settings, services, store)
        await app.state.retention.start()
        jobs = _leased_jobs(services, store, presence, settings, app.state.retention)
        app.state.jobs = {job.name: job for job in jobs}
        background = [
            asyncio.create_task(
                services.heartbeats.run(settings.heartbeat_flush_s), name="heartbeats"
            ),
            *(asyncio.create_task(job.run(), name=job.name) for job in jobs),
            asyncio.create_task(
                services.leases.sweep(settings.lease_sweep_s), name="lease-sweeper"
            ),
        ]
        background.append(
            asyncio.create_task(app.state.alerting.alerts.run(), name="alert-evaluator")
        )
        bridge_settings = bridge_config(settings)
        app.state.bridge = (
            None if bridge_settings is None else MqttBridge(services, bridge_settings)
        )
        bridge_task = (
            None
            if app.state.bridge is None
            else asyncio.create_task(app.state.bridge.run(), name="mqtt-bridge")
        )
        log.info("beamwarden %s serving on %s", __version__, backend_name(settings.database_url))
        if settings.gc_freeze:
            app.openapi()  # built now, so it is frozen too
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if bridge_task is not None:  # first: it stores what it holds, then lets go
                bridge_task.cancel()
                await asyncio.gather(bridge_task, return_exceptions=True)
            await services.committer.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await presence.close()
            await store.close()
            if obs is not None:
                app.state.obs = None
                await asyncio.to_thread(obs.close)

    app = FastAPI(
        title="Beamwarden",
        version=__version__,
        summary="Fleet control plane and ingestion for sensor nodes (wire protocol v1)",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks look up the global providers on every request;
        # our metrics are Prometheus (/metrics), so they stay off (a fifth of a small request).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.backend = backend_name(settings.database_url)
    install_error_handlers(app)
    for module in (readings, series, nodes, telemetry, events, leases, health, metrics, devices):
        app.include_router(module.router)
    for module in (alert_routes, checkin_routes, retention_routes):
        app.include_router(module.router)
    app.mount("/obs", GuardedObs(), name="obs")
    if settings.dashboard:
        web.install(app)
    app.add_middleware(RequestContext, metrics=server_metrics)
    if obs_registry is not None:  # counted into obs (/obs/metrics), route templates as labels
        app.add_middleware(RequestMetricsMiddleware, registry=obs_registry)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(readings.READINGS_COMPONENTS)
            components["schemas"]["IngestResult"] = IngestResult.model_json_schema()
            components.setdefault("securitySchemes", {})["HTTPBearer"] = {
                "type": "http",
                "scheme": "bearer",
            }
            for path, item in readings.openapi_paths().items():
                schema["paths"].setdefault(path, {}).update(item)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """The app from ``BEAMWARDEN_*`` and ``$BEAMWARDEN_CONFIG``: the factory each worker process
    of ``beamwarden serve --workers N`` calls (settings are read then, not at import)."""
    return create_app(load_settings())
