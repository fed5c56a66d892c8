"""Room: server/web. Rendering pages and fragments, and the dashboard's answer to errors.

:class:`WebRoute` wraps every dashboard handler: a missing session sends a page to the login form
(a panel under ``/ui/`` answers 401, so its script can do the same), and a server error becomes an
HTML page with the right status instead of the API's JSON envelope. Nothing ever shows a
traceback or a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.routing import APIRoute
from jinja2 import Environment
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from beamwarden import __version__
from beamwarden.server.errors import ServerError, http_status

from .security import LoginRequired, Viewer, settings_of, with_security_headers

log = logging.getLogger("beamwarden.web")


def status_of(exc: ServerError) -> int:
    """The shared table's status (:data:`~beamwarden.server.errors.HTTP_STATUS`), 500 if none."""
    return http_status(exc) or 500


def is_panel(request: Request) -> bool:
    """A request of a page's script (a fragment or JSON under ``/ui/``), not a page."""
    return request.url.path.startswith("/ui/")


def environment(request: Request) -> Environment:
    env: Environment = request.app.state.web_templates
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    viewer = viewer or getattr(request.state, "viewer", None)
    settings = settings_of(request)
    page = {
        "request": request,
        "viewer": viewer,
        "csrf_token": viewer.csrf_token if viewer else "",
        "version": __version__,
        "refresh_ms": int(settings.dashboard_refresh_s * 1000),
        "path": request.url.path,
        "now": request.app.state.services.clock.now(),
        **(context or {}),
    }
    body = environment(request).get_template(template).render(page)
    return with_security_headers(HTMLResponse(body, status_code=status, headers=headers))  # type: ignore[return-value]


def error_page(request: Request, exc: ServerError) -> Response:
    status = status_of(exc)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if status in (429, 503) and retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if is_panel(request):
        body = {"error": {"code": exc.code, "message": exc.message}}
        return with_security_headers(JSONResponse(body, status_code=status, headers=headers))
    return render(
        request,
        "error.html",
        {"status": status, "message": exc.message, "code": exc.code},
        status=status,
        headers=headers,
    )


class WebRoute(APIRoute):
    """A dashboard route: login redirects and HTML error pages (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                if is_panel(request):
                    body = {"error": {"code": "login_required", "message": "log in first"}}
                    return with_security_headers(JSONResponse(body, status_code=401))
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                if request.method != "GET":
                    target = "/"
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            except ServerError as exc:
                if status_of(exc) == 500:
                    log.error("unmapped server error %s: %s", type(exc).__name__, exc)
                return error_page(request, exc)

        return route


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never another origin)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
