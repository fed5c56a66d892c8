"""Room: server/web. The dashboard: server-rendered pages (Jinja2), a little JavaScript for live
panels, charts drawn by uPlot (installed from npm by the build, served from ``/static/vendor``).

Uses services (and pure ``fleet``) only, like ``server/api``; its own login sessions and CSRF
tokens (:mod:`.security`). ``install(app)`` adds its routes and static files to the app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from . import account, activity, alerts, auth, charts, devices, diagnostics, fleet, nodes, sensors
from .templating import build_environment

__all__ = ["STATIC_DIR", "install"]

STATIC_DIR = Path(__file__).parent / "static"
ROUTERS = (
    auth.router,
    fleet.router,
    nodes.router,
    sensors.router,
    charts.router,
    devices.router,
    activity.router,
    alerts.router,
    diagnostics.router,
    account.router,
)


def install(app: FastAPI) -> None:
    app.state.web_templates = build_environment()
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
