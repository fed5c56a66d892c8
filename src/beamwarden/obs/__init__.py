"""Room: obs (stands alone: imports no other beamwarden room). Embedded logs and metrics for any
Python 3.11+ app.

Logs go through stdlib ``logging`` (:class:`ObsHandler`: a bounded queue, one writer thread) into
a store (:class:`MemoryStore`, :class:`RingBufferStore`, :class:`SqliteStore`); metrics are
counters, gauges and histograms in a :class:`MetricRegistry`, scraped through prometheus-client
(:class:`ObsCollector`) and snapshotted into the store by :class:`ObsRuntime`, which also applies
the :class:`RetentionPolicy`. :class:`ObsEndpoints` serves ``/logs``, ``/metrics`` and friends
as ASGI (:class:`ObsAsgiApp`) or WSGI (:class:`ObsWsgiApp`). :class:`Observability` wires it all.
The command line is ``beamwarden.obs.cli`` (a typer app). See ``docs/obs.md``.
"""

from .asgi import ObsAsgiApp
from .clock import Clock, ManualClock, SystemClock
from .collector import ObsCollector, render_prometheus
from .context import bind, bound_fields
from .django_adapter import obs_urlpatterns
from .endpoints import ObsEndpoints, Request, Response
from .errors import InvalidLevel, InvalidMetric, InvalidQuery, InvalidRecord, ObsError, StoreClosed
from .flask_adapter import mount_obs_flask
from .handler import ObsHandler
from .helpers import debug, error, info, log, log_exception, timed, warning
from .levels import Level, parse_level
from .memory_store import MemoryStore, RingBufferStore
from .metrics import Counter, Gauge, Histogram, MetricRegistry
from .middleware import RequestMetricsMiddleware
from .observability import Observability
from .query import LogQuery, SampleQuery
from .records import HistogramValue, LogRecord, MetricKind, MetricSample, new_log_record, new_sample
from .retention import RetentionPolicy, RetentionReport, apply_retention
from .runtime import ObsRuntime
from .sqlite_store import SqliteStore
from .starlette_adapter import mount_obs
from .store import ObsStore, StoreStats
from .wsgi import ObsWsgiApp

__all__ = [
    "Clock",
    "Counter",
    "Gauge",
    "Histogram",
    "HistogramValue",
    "InvalidLevel",
    "InvalidMetric",
    "InvalidQuery",
    "InvalidRecord",
    "Level",
    "LogQuery",
    "LogRecord",
    "ManualClock",
    "MemoryStore",
    "MetricKind",
    "MetricRegistry",
    "MetricSample",
    "ObsAsgiApp",
    "ObsCollector",
    "ObsEndpoints",
    "ObsError",
    "ObsHandler",
    "ObsRuntime",
    "ObsStore",
    "ObsWsgiApp",
    "Observability",
    "Request",
    "RequestMetricsMiddleware",
    "Response",
    "RetentionPolicy",
    "RetentionReport",
    "RingBufferStore",
    "SampleQuery",
    "SqliteStore",
    "StoreClosed",
    "StoreStats",
    "SystemClock",
    "apply_retention",
    "bind",
    "bound_fields",
    "debug",
    "error",
    "info",
    "log",
    "log_exception",
    "mount_obs",
    "mount_obs_flask",
    "new_log_record",
    "new_sample",
    "obs_urlpatterns",
    "parse_level",
    "render_prometheus",
    "timed",
    "warning",
]
