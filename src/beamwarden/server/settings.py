"""Room: server (wiring). ``ServerSettings``: every setting of the server, documented once, here.

Read from ``BEAMWARDEN_*`` environment variables and, optionally, a TOML file (``--config`` or
``BEAMWARDEN_CONFIG``); the environment wins over the file. Nothing here runs at import time:
``load_settings()`` is called by the CLI or a test and the result handed to ``create_app``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from beamwarden.fleet.retention import RetentionOverride, RetentionPolicy

MiB = 1024 * 1024


class ServerSettings(BaseSettings):
    """Every setting of the server. Environment: ``BEAMWARDEN_<NAME>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="BEAMWARDEN_", extra="forbid", frozen=True)

    environment: Literal["development", "production"] = "development"
    """``production`` refuses plain HTTP on a non-loopback address unless behind a proxy."""

    database_url: str = "sqlite:///./data/beamwarden.db"
    """``sqlite:///path`` (embedded default, WAL) or ``postgresql://user@host:port/db``."""
    db_pool_size: int = Field(5, ge=1, le=100)
    """Connections kept open to the database."""
    db_connect_timeout_s: float = Field(5.0, gt=0)
    """Give up connecting to the database after this long (then 503)."""
    db_query_timeout_s: float = Field(30.0, gt=0)
    """Give up on one statement after this long."""
    db_startup_timeout_s: float = Field(30.0, ge=0)
    """At start, wait this long for the database to answer before failing."""
    sqlite_writer: Literal["process", "thread"] = "process"
    """Where SQLite's readings writer runs: a child process of its own (``process``: a core of its
    own, no share of the server's GIL; measured faster) or a thread of the server (``thread``)."""
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "FULL"
    """SQLite's ``PRAGMA synchronous``. ``FULL`` makes every acknowledged reading survive a power
    cut (PROTOCOL.md's promise); ``NORMAL`` may lose the last commits in a power cut."""
    sqlite_cache_mib: int = Field(64, ge=1)
    """Page cache of SQLite's readings writer (keeps the hot end of every series in memory)."""
    sqlite_checkpoint_pages: int = Field(10_000, ge=1)
    """SQLite ``wal_autocheckpoint`` of the readings writer, in pages."""
    sqlite_mmap_mib: int = Field(256, ge=0)
    """``mmap_size`` of SQLite's reading connections; 0 turns memory-mapped reads off."""
    postgres_jit: bool = False
    """PostgreSQL's JIT compiler for the store's connections (off: it cost more than it saved)."""
    migrate_on_start: bool = True
    """Run the database migrations when the server starts."""

    host: str = "127.0.0.1"
    """Address ``beamwarden serve`` listens on."""
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    """Server processes ``beamwarden serve`` runs on one port. More than one spreads parsing and
    validation over cores; each process keeps its own caches and heartbeat buffer, so a node's
    status may lag by up to ``heartbeat_flush_s`` on a process that did not take its heartbeat."""
    tls_certfile: Path | None = None
    """Serve HTTPS with this certificate (PEM); leave unset behind a TLS-terminating proxy."""
    tls_keyfile: Path | None = None
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies whose ``X-Forwarded-For``/``-Proto`` headers are trusted (uvicorn's setting)."""

    max_body_bytes: int = Field(8 * MiB, ge=1024)
    """Largest request body, after gzip decompression (PROTOCOL.md: 8 MiB). Larger → 413."""
    max_batch: int = Field(10_000, ge=1, le=10_000)
    """Most readings in one request (PROTOCOL.md: 10 000). More → 413."""
    list_limit_default: int = Field(100, ge=1)
    """``limit`` of list endpoints when none is given."""
    list_limit_max: int = Field(1000, ge=1)
    """Largest ``limit`` a list endpoint accepts (larger values are capped to it)."""
    series_max_buckets: int = Field(10_000, ge=1)
    """Most buckets one ``/api/series`` page returns."""

    ingest_sink: Literal["store", "discard"] = "store"
    """``discard`` validates readings and throws them away: only for measuring the cost of storage."""
    ingest_writers: int | None = Field(None, ge=1, le=16)
    """Concurrent group commits; unset: 1 on SQLite (it has one writer anyway), 4 on PostgreSQL,
    whose writers copy their readings at the same time and queue only for the short end of a
    commit that records a stream's sequence ranges (docs/benchmarks.md)."""

    @property
    def writers(self) -> int:
        """``ingest_writers``, or the default of the database in use."""
        if self.ingest_writers is not None:
            return self.ingest_writers
        return 4 if self.database_url.startswith(("postgres", "postgresql")) else 1

    ingest_max_pending_readings: int = Field(200_000, ge=1000)
    """Readings waiting for a commit beyond which new batches are refused with 429 + Retry-After."""
    opaque_id_window_s: float = Field(7 * 86400, gt=0)
    """Opaque (non-stream) reading ids are deduplicated within this window (PROTOCOL.md: 7 days)."""

    presence_url: str = "memory"
    """Where leases and node presence live: ``memory`` (in this process: the embedded default, one
    server process) or ``redis://host:6379/0`` (shared by every replica)."""
    presence_prefix: str = "beamwarden"
    """Prefix of the presence keys in Redis (several deployments can share one Redis)."""
    presence_timeout_s: float = Field(5.0, gt=0)
    """Give up on one presence operation (a Redis command) after this long (then 503)."""
    lease_sweep_s: float = Field(2.0, gt=0, le=60)
    """How often expired leases are looked for (each found once logs ``lease_expired``)."""
    events_retention_days: float = Field(90, ge=0)
    """Activity-log events older than this are deleted by the retention sweeper (0: kept forever)."""
    telemetry_retention_days: float = Field(30, ge=0)
    """Raw telemetry (heartbeat rows) older than this is deleted (0: kept forever); a node's last
    heartbeat facts in the inventory are not telemetry and stay."""
    rollup_interval_s: float = Field(5.0, gt=0)
    """How often the minutes that readings commits marked are summarised into 1-minute and 1-hour
    rollups (one replica does it: lease ``rollups``). Series over two hours and more read them;
    marked minutes are computed from the raw readings meanwhile, so answers are never stale."""
    readings_retention_days: float = Field(30, ge=0)
    """Raw readings older than this are forgotten (0: kept forever); series over older ranges are
    answered from the rollups. The default of every stream: ``retention_overrides`` changes it
    per stream (docs/analytics.md, "Retention"). PostgreSQL drops whole day partitions."""
    rollup_minute_retention_days: float = Field(365, ge=0)
    """1-minute rollups older than this are forgotten (0: kept); the default of every stream."""
    rollup_hour_retention_days: float = Field(0, ge=0)
    """1-hour rollups older than this are forgotten (0, the default: kept forever)."""
    retention_overrides: list[RetentionOverride] = Field(default_factory=list)
    """Per-stream retention, in order, the first match deciding each retention: in TOML
    ``[[retention_overrides]]`` with ``node``, ``sensor_type`` and/or ``sensor_id`` (a string or a
    list) and any of ``raw_days``, ``minute_days``, ``hour_days``; in the environment, JSON.
    Imported at start when changed; ``PUT /api/retention`` replaces the policy after that."""
    retention_sweep_s: float = Field(3600.0, gt=0)
    """How often the retention sweeper (and the pruning of expired opaque reading ids) runs. With
    several replicas it runs in the one holding the lease ``sweeper:retention``
    (``sweeper:reading-keys``)."""
    retention_batch: int = Field(5000, ge=1, le=1_000_000)
    """Most rows one retention statement deletes (each batch is a short transaction of its own)."""

    heartbeat_flush_s: float = Field(1.0, gt=0)
    """Heartbeats are acknowledged at once and written in batches this often."""
    heartbeat_buffer_max: int = Field(100_000, ge=100)
    """Most heartbeats held while the database is down; older ones are dropped (and counted)."""

    token_cache_s: float = Field(5.0, ge=0)
    """A checked token is trusted this long without asking the database (revocation delay)."""
    retry_after_s: int = Field(5, ge=1)
    """``Retry-After`` sent with 503 when the database is unavailable."""
    metrics_allow_from: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    """Networks that may read ``/metrics`` without a token with the ``metrics`` scope."""

    gc_freeze: bool = True
    """After start-up, move every object alive into the garbage collector's permanent generation:
    a full collection then walks only what requests allocate (measured: 128 ms → ~0 ms, which
    showed up as p99 latency). Tests that build many apps in one process turn it off."""

    obs_store: Literal["memory", "sqlite", "off"] = "memory"
    """Where the server keeps its own logs and metric history, served under ``/obs/``
    (``beamwarden.obs``): a bounded ring buffer in ``memory``, a ``sqlite`` file at ``obs_path``,
    or ``off``."""
    obs_path: Path = Path("data/obs.db")
    """The SQLite file of ``obs_store = "sqlite"``."""
    obs_export_otlp_url: str | None = None
    """Ship the server's own logs and metric history over OTLP/HTTP (JSON) to this collector
    (``http://collector:4318``; ``/v1/logs`` and ``/v1/metrics`` are added). Unset: off."""
    obs_export_loki_url: str | None = None
    """Ship the server's own logs to this Loki (``http://loki:3100``; push API). Unset: off."""
    obs_export_pushgateway_url: str | None = None
    """Push the server's own metrics every 15 s to this Prometheus Pushgateway
    (``http://pushgateway:9091``; job ``beamwarden``, instance = host name). Unset: off."""
    obs_export_http_url: str | None = None
    """POST the server's own logs and metric history as JSON batches to this URL. Unset: off.
    Exporters remember what was accepted (in ``obs_path`` with ``obs_store = "sqlite"``)."""
    obs_request_metrics: bool = False
    """Count and time every request into obs too (``http_requests_total``,
    ``http_request_duration_seconds`` under ``/obs/metrics``; route templates as labels). Off by
    default: ``/metrics`` already counts requests, and this costs 5–8 µs a request (measured in
    process: 3–5 % of a storage-off single-reading request, above the 2 % allowed)."""

    alert_interval_s: float = Field(30.0, ge=1, le=3600)
    """How often the alert evaluator runs a cycle (one replica does: it holds the lease
    ``alert-evaluator``, whose TTL is three intervals)."""
    alert_rules_file: Path | None = None
    """A TOML file of alert rules (docs/analytics.md, docs/alerts.md), imported at start when its
    content changed since the last import; ``PUT /api/alert-rules`` replaces the rules after."""
    alert_settle_s: float = Field(5.0, ge=0, le=300)
    """A cycle evaluates readings received up to this long ago (commits still in flight wait for
    the next cycle)."""
    alert_late_s: float = Field(3600.0, ge=0)
    """Readings stamped more than this long before they were received (an agent's backlog after
    an outage) are stored but not judged by alert rules."""
    alert_node_status: bool = True
    """The built-in rule ``node-offline``: a node going offline (and coming back) notifies."""
    notify_urls: dict[str, str] = Field(default_factory=dict)
    """Notification channels, name → apprise URL (``discord://…``, ``slack://…``,
    ``mailtos://…``, ``ntfy://…``, ``json://host/path`` for a generic webhook). Secrets: never
    logged. In TOML: ``[notify_urls]`` then ``ops = "discord://…"``; in the environment, JSON."""
    notify_rate_per_minute: int = Field(30, ge=1)
    """Most notifications one channel sends per minute; more wait (delayed, not dropped)."""
    notify_max_attempts: int = Field(6, ge=1, le=50)
    """Attempts of one notification before it is marked failed (backoff 30 s doubling, ≤ 1 h)."""
    notify_timeout_s: float = Field(15.0, gt=0)
    """Give up on one send after this long (counts as a failed attempt)."""
    notify_link_base: str = ""
    """The dashboard's public URL (``https://beamwarden.example``); notifications link to
    ``<base>/nodes/<node_id>``. Empty: no link."""
    notify_title_template: str = "[{status}] {rule}: {subject}"
    """A notification's title; fields: rule, status, subject, node_id, sensor_id, field, value,
    threshold, severity, since, at, detail, headline, link."""
    notify_body_template: str = (
        "{headline}\nrule: {rule} ({severity})\nnode: {node_id}{sensor}\n"
        "value: {value} (threshold {threshold})\nsince: {since}\n{link}"
    )
    """A notification's body; the fields of ``notify_title_template``."""

    bridge_mqtt_url: str | None = None
    """The MQTT broker the bridge subscribes to (``mqtt://user:password@host:1883``, ``mqtts://``
    for TLS). Unset: no bridge in this server (``beamwarden bridge`` can run one on its own). One
    bridge per broker ingests: the holder of the lease ``bridge:<host:port>`` (docs/bridge.md)."""
    bridge_topics: list[str] = Field(
        default_factory=lambda: ["gv2mqtt/#", "home/+/BTtoMQTT/#", "home/+/LWT"]
    )
    """Subscriptions: govee2mqtt's, and OpenMQTTGateway's / Theengs Gateway's under base ``home``."""
    bridge_fahrenheit: bool = False
    """govee2mqtt publishes temperatures in °F (its ``temperature_scale`` is F); stored as °C."""
    bridge_name: str = Field("mqtt-bridge", pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    """The bridge's node id: its readings are stored under it, each gateway as their source."""
    bridge_topic_prefix: str = ""
    """Removed from every topic before decoding (a broker shared as ``<site>/gv2mqtt/…``)."""
    bridge_dedup_window_s: float = Field(10.0, gt=0, le=3600)
    """One measurement of a device heard again within this long (by another gateway, or repeated)
    is stored once."""

    dashboard: bool = True
    """Serve the web dashboard (login, fleet, nodes, devices, activity, alerts, diagnostics)."""
    dashboard_refresh_s: float = Field(5.0, ge=0.2, le=3600)
    """How often the fleet page and other live panels refresh themselves in the browser."""
    session_idle_s: float = Field(7 * 86_400, ge=60)
    """A dashboard session ends after this long without a request."""
    session_max_s: float = Field(30 * 86_400, ge=60)
    """A dashboard session ends this long after login, used or not."""
    session_cookie_secure: Literal["auto", "always", "never"] = "auto"
    """The ``Secure`` flag of the session cookie: ``auto`` sets it when the request came over
    HTTPS (directly, or through a proxy named in ``forwarded_allow_ips``)."""
    login_max_failures: int = Field(5, ge=1, le=1000)
    """Failed logins allowed per client address and per user name within ``login_window_s``;
    past that, logins are refused (429 + Retry-After) until the window slides. Counted per
    server process."""
    login_window_s: float = Field(300.0, ge=1)

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    def retention_policy(self) -> RetentionPolicy:
        """The retention policy these settings describe."""
        return RetentionPolicy(
            raw_days=self.readings_retention_days,
            minute_days=self.rollup_minute_retention_days,
            hour_days=self.rollup_hour_retention_days,
            overrides=tuple(self.retention_overrides),
        )

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def load_settings(config_file: Path | None = None, **overrides: Any) -> ServerSettings:
    """Settings from a TOML file (optional), then ``BEAMWARDEN_*`` variables, then ``overrides``.

    The file is ``config_file`` or, if unset, ``$BEAMWARDEN_CONFIG``; its keys are the setting
    names (``database_url = "postgresql://…"``). Unknown keys are an error.
    """
    path = config_file or (Path(p) if (p := os.environ.get("BEAMWARDEN_CONFIG")) else None)
    from_file: dict[str, Any] = {}
    if path is not None:
        with path.open("rb") as f:
            from_file = tomllib.load(f)
    env = ServerSettings().model_dump(exclude_unset=True)
    return ServerSettings(**{**from_file, **env, **overrides})
