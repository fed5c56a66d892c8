"""Room: server/web. Who is looking: the session cookie, CSRF tokens, roles, security headers.

- The session cookie (``bw_session``) is HttpOnly, SameSite=Lax, ``Secure`` over HTTPS (setting
  ``session_cookie_secure``); the server keeps only its SHA-256 hash.
- Every state-changing request (POST) carries the session's CSRF token, in the form field
  ``csrf_token`` or the ``X-CSRF-Token`` header; without it: 403. The login form, before there is
  a session, uses a double-submit cookie (``bw_login``).
- Viewers look; admins change things (``require_admin``).
- Pages get a strict Content-Security-Policy: scripts and styles from our own origin only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from beamwarden.server.errors import Forbidden, ServerError
from beamwarden.server.records import Principal
from beamwarden.server.services.container import Services
from beamwarden.server.services.users import (
    SessionView,
    UserService,
    same_secret,
    session_principal,
)
from beamwarden.server.settings import ServerSettings
from beamwarden.server.user_records import UserRow

SESSION_COOKIE = "bw_session"
LOGIN_COOKIE = "bw_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(ServerError):
    """No live session: a page redirects to the login form, a panel answers 401."""

    code = "login_required"


class CsrfRejected(Forbidden):
    code = "csrf_failed"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in person of a request."""

    session: SessionView
    principal: Principal

    @property
    def user(self) -> UserRow:
        return self.session.user

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    @property
    def is_admin(self) -> bool:
        return self.session.user.is_admin


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def settings_of(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def users_of(request: Request) -> UserService:
    users = services_of(request).users
    if users is None:  # the app always builds it; a bare Services in a test may not
        raise LoginRequired("the dashboard has no user store")
    return users


async def current_viewer(request: Request) -> Viewer:
    cached: Viewer | None = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    view = await users_of(request).session(request.cookies.get(SESSION_COOKIE))
    if view is None:
        raise LoginRequired("log in first")
    viewer = Viewer(view, session_principal(view.user))
    request.state.viewer = viewer
    return viewer


async def require_admin(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden("only an admin may change this")
    return viewer


async def _presented_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def checked_viewer(
    request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Viewer:
    """The viewer of a state-changing request whose CSRF token matches their session's."""
    presented = await _presented_csrf(request)
    if not presented or not same_secret(presented, viewer.csrf_token):
        raise CsrfRejected("the form's CSRF token is missing or wrong; reload the page")
    return viewer


async def checked_admin(viewer: Annotated[Viewer, Depends(checked_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden("only an admin may change this")
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
AdminDep = Annotated[Viewer, Depends(require_admin)]
#: a POST by anyone logged in, CSRF checked
CheckedDep = Annotated[Viewer, Depends(checked_viewer)]
#: a POST by an admin, CSRF checked
CheckedAdminDep = Annotated[Viewer, Depends(checked_admin)]


def login_csrf(request: Request) -> str:
    """The login form's double-submit token: the cookie's value, or a new one."""
    value = request.cookies.get(LOGIN_COOKIE)
    if value and 20 <= len(value) <= 64:
        return value
    return secrets.token_urlsafe(24)


def secure_cookies(request: Request) -> bool:
    mode = settings_of(request).session_cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


def with_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
