"""Room: obs (stands alone). Thin FastAPI/Starlette adapter: mount the endpoints, add the
request-metrics middleware. Needs nothing from Starlette at import time."""

from __future__ import annotations

from typing import Any, Protocol

from .asgi import ObsAsgiApp
from .metrics import MetricRegistry
from .middleware import RequestMetricsMiddleware


class MountableApp(Protocol):
    def mount(self, path: str, app: Any, name: str | None = None) -> None: ...

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None: ...


def mount_obs(
    app: MountableApp,
    obs_app: ObsAsgiApp,
    path: str = "/obs",
    *,
    request_metrics: MetricRegistry | None = None,
) -> None:
    """``/obs/logs``, ``/obs/metrics``… on ``app``; with ``request_metrics``, also count and time
    every request of ``app`` into that registry (route templates as labels)."""
    app.mount(path, obs_app, name="obs")
    if request_metrics is not None:
        app.add_middleware(RequestMetricsMiddleware, registry=request_metrics)
