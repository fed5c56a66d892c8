"""The public names of beamwarden.obs: ``__all__`` is exactly what is exported, each resolves,
and the package imports no other beamwarden room."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import beamwarden.obs as obs

EXPECTED = {
    "Clock", "Counter", "Gauge", "Histogram", "HistogramValue", "InvalidLevel", "InvalidMetric",
    "InvalidQuery", "InvalidRecord", "Level", "LogQuery", "LogRecord", "ManualClock",
    "MemoryStore", "MetricKind", "MetricRegistry", "MetricSample", "ObsAsgiApp", "ObsCollector",
    "ObsEndpoints", "ObsError", "ObsHandler", "ObsRuntime", "ObsStore", "ObsWsgiApp",
    "Observability", "Request", "RequestMetricsMiddleware", "Response", "RetentionPolicy",
    "RetentionReport", "RingBufferStore", "SampleQuery", "SqliteStore", "StoreClosed",
    "StoreStats", "SystemClock", "apply_retention", "bind", "bound_fields", "debug", "error",
    "info", "log", "log_exception", "mount_obs", "mount_obs_flask", "new_log_record",
    "new_sample", "obs_urlpatterns", "parse_level", "render_prometheus", "timed", "warning",
}  # fmt: skip


def test_all_is_exactly_the_public_names() -> None:
    assert len(obs.__all__) == len(set(obs.__all__))
    assert set(obs.__all__) == EXPECTED
    assert list(obs.__all__) == sorted(obs.__all__)
    defined = {
        name
        for name, value in vars(obs).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert defined == EXPECTED
    for name in obs.__all__:
        value = getattr(obs, name)
        assert getattr(value, "__module__", "beamwarden.obs.").startswith("beamwarden.obs.")


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from beamwarden.obs import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == EXPECTED


def test_importing_obs_loads_no_other_room_and_no_framework() -> None:
    code = (
        "import sys, beamwarden.obs, beamwarden.obs.cli;"
        "print(sorted(m for m in sys.modules if m.startswith(('beamwarden.', 'fastapi', 'starlette', 'flask', 'django'))"
        " and not m.startswith('beamwarden.obs')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
