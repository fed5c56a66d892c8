"""Room: server/api. The server's own logs and metrics (``beamwarden.obs``) under ``/obs/``.

``/obs/logs``, ``/obs/logs.json``, ``/obs/metrics``, ``/obs/metrics/prometheus``,
``/obs/metrics.json`` and ``/obs/health`` are obs's own endpoints (docs/obs.md), mounted apart from
the server's ``/metrics`` so the two never collide. Logs can say more than metrics, so the guard
is the one of ``/metrics`` with a stricter scope: a request from a network in
``metrics_allow_from`` (default: loopback) passes, anyone else needs a token with the ``admin``
scope. With ``obs_store = "off"`` the paths answer 404.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from beamwarden.obs import Observability
from beamwarden.protocol import Scope as TokenScope
from beamwarden.server.api.deps import authenticate_headers
from beamwarden.server.api.errors import error_response, response_for
from beamwarden.server.api.metrics import allowed_network
from beamwarden.server.errors import ServerError
from beamwarden.server.services.credentials import require


class GuardedObs:
    """An ASGI app: the credential check, then the obs app of ``app.state.obs``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        state = scope["app"].state
        obs: Observability | None = getattr(state, "obs", None)
        if obs is None:
            await error_response(404, "not_found", "obs is off on this server")(
                scope, receive, send
            )
            return
        client = scope.get("client")
        if not allowed_network(client[0] if client else None, state.settings.metrics_allow_from):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                require(await authenticate_headers(headers, state.services), TokenScope.ADMIN)
            except ServerError as exc:
                await response_for(exc, state.services.metrics)(scope, receive, send)
                return
        await obs.asgi(scope, receive, send)
