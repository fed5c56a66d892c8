"""Room: server/services. The services of one server, built together from a store and settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.credentials import Credentials
from beamwarden.server.services.devices import DeviceService, DeviceStore
from beamwarden.server.services.fleet_views import FleetViews
from beamwarden.server.services.heartbeats import HeartbeatService
from beamwarden.server.services.ingest import GroupCommitter, IngestService
from beamwarden.server.services.leases import LeaseService, Presence
from beamwarden.server.services.ports import ReadingSink, Store
from beamwarden.server.services.queries import ReadingQueries
from beamwarden.server.services.registry import NodeRegistry
from beamwarden.server.services.users import UserConfig, UserService, UserStore


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The settings services read (the app copies them from ``ServerSettings``)."""

    max_batch: int = 10_000
    ingest_writers: int = 1
    ingest_max_pending_readings: int = 200_000
    token_cache_s: float = 5.0
    heartbeat_buffer_max: int = 100_000
    series_max_buckets: int = 10_000
    users: UserConfig = field(default_factory=UserConfig)


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    clock: Clock
    metrics: ServerMetrics
    credentials: Credentials
    activity: ActivityLog
    registry: NodeRegistry
    heartbeats: HeartbeatService
    committer: GroupCommitter
    ingest: IngestService
    queries: ReadingQueries
    leases: LeaseService
    fleet: FleetViews
    """Listings of nodes with status and counts (``GET /api/nodes``, the dashboard)."""
    devices: DeviceService | None = None
    """The device registry (``None`` when built without a device store)."""
    users: UserService | None = None
    """Dashboard users and sessions (``None`` when built without a user store)."""

    @classmethod
    def build(
        cls,
        store: Store,
        clock: Clock,
        metrics: ServerMetrics,
        config: ServiceConfig,
        presence: Presence,
        sink: ReadingSink | None = None,
        device_store: DeviceStore | None = None,
        user_store: UserStore | None = None,
    ) -> Services:
        credentials = Credentials(store, clock, config.token_cache_s)
        activity = ActivityLog(store, clock)
        registry = NodeRegistry(store, credentials, activity, clock)
        leases = LeaseService(presence, clock, activity)
        heartbeats = HeartbeatService(
            store, registry, clock, metrics, leases, activity, config.heartbeat_buffer_max
        )
        committer = GroupCommitter(
            sink or store, metrics, config.ingest_writers, config.ingest_max_pending_readings
        )
        ingest = IngestService(committer, registry, activity, clock, metrics, config.max_batch)
        queries = ReadingQueries(store, store, clock, config.series_max_buckets)
        return cls(
            store,
            clock,
            metrics,
            credentials,
            activity,
            registry,
            heartbeats,
            committer,
            ingest,
            queries,
            leases,
            FleetViews(store, clock, registry.last_seen, leases),
            devices=(
                DeviceService(device_store, activity, clock) if device_store is not None else None
            ),
            users=(
                UserService(user_store, credentials, activity, clock, config.users)
                if user_store is not None
                else None
            ),
        )
