"""Room: server/web. Login and logout pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from beamwarden.server.errors import Unauthenticated
from beamwarden.server.services.users import same_secret

from .rendering import WebRoute, render, safe_next
from .security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CheckedDep,
    CsrfRejected,
    login_csrf,
    set_cookie,
    users_of,
    with_security_headers,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _login_form(
    request: Request, next_url: str, message: str | None = None, status: int = 200
) -> Response:
    token = login_csrf(request)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next_url": next_url, "message": message},
        status=status,
    )
    set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not csrf_token or not same_secret(cookie, csrf_token):
        raise CsrfRejected("the login form expired; reload the page and try again")
    client = request.client.host if request.client else None
    try:
        secret, _ = await users_of(request).login(
            username.strip(), password, client, request.headers.get("user-agent")
        )
    except Unauthenticated as exc:
        return _login_form(request, safe_next(next), exc.message, status=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    max_age = int(users_of(request).config.session_max_s)
    set_cookie(request, response, SESSION_COOKIE, secret, max_age=max_age)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return with_security_headers(response)


@router.post("/logout")
async def logout(request: Request, viewer: CheckedDep) -> Response:
    await users_of(request).logout(viewer.session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return with_security_headers(response)
