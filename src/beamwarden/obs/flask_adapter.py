"""Room: obs (stands alone). Thin Flask adapter: serve the WSGI endpoints under a prefix of a
Flask app (through werkzeug's ``DispatcherMiddleware``, which Flask already depends on)."""

from __future__ import annotations

from typing import Any, Protocol

from .wsgi import ObsWsgiApp


class FlaskLike(Protocol):
    wsgi_app: Any


def mount_obs_flask(app: FlaskLike, obs_app: ObsWsgiApp, prefix: str = "/obs") -> None:
    """Requests under ``prefix`` go to the obs endpoints, the rest to the Flask app."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {prefix: obs_app})
