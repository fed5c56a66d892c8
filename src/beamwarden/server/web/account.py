"""Room: server/web. Your account (personal API tokens, your password) and, for admins, the users.

``/account`` is anyone's own: their personal API tokens (PROTOCOL.md's user tokens: made with a
scope their role allows, the secret shown once, revoked at will) and their password (the current
one required; changing it ends every session of theirs, this one too). ``/users`` is an admin's:
add a user, change a role, disable or enable; the service refuses to demote or disable the last
admin, and the page says so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from beamwarden.protocol import Scope
from beamwarden.server.errors import InvalidRequest, NotFound
from beamwarden.server.records import from_us
from beamwarden.server.services.users import ROLE_SCOPES
from beamwarden.server.user_records import Role

from .forms import actor, page, redirect, text_field
from .rendering import WebRoute
from .security import (
    SESSION_COOKIE,
    AdminDep,
    CheckedAdminDep,
    CheckedDep,
    Viewer,
    ViewerDep,
    users_of,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)

FormText = Annotated[str | None, Form()]
#: the order scopes are offered in
SCOPE_ORDER = (Scope.READ, Scope.METRICS, Scope.ADMIN)


def _scopes(viewer: Viewer) -> list[Scope]:
    return [s for s in SCOPE_ORDER if s in ROLE_SCOPES[viewer.user.role]]


async def _account(
    request: Request, viewer: Viewer, issued: tuple[int, str] | None = None, status: int = 200
) -> Response:
    tokens = await users_of(request).tokens(viewer.user)
    return page(
        request,
        "account.html",
        {
            "tokens": sorted(tokens, key=lambda t: t.id, reverse=True),
            "scopes": _scopes(viewer),
            "issued": issued,
            "from_us": from_us,
        },
        viewer,
        status=status,
    )


@router.get("/account")
async def account_page(request: Request, viewer: ViewerDep) -> Response:
    return await _account(request, viewer)


@router.post("/account/tokens")
async def issue_token(
    request: Request, viewer: CheckedDep, name: FormText = None, scope: FormText = None
) -> Response:
    """Make a personal token; the answer shows its secret this once (not a redirect: a secret
    never travels in a URL or a cookie)."""
    try:
        wanted = Scope(scope or "")
    except ValueError:
        raise InvalidRequest("scope is read, metrics or admin", code="invalid_form") from None
    if wanted not in _scopes(viewer):
        raise InvalidRequest(
            f"a {viewer.user.role.value} may not hold a {wanted.value} token", code="invalid_form"
        )
    label = text_field(name, "the token's name", 100) or ""
    issued = await users_of(request).issue_token(viewer.user, label, wanted)
    return await _account(request, viewer, (issued.row.id, issued.secret), status=201)


def _token_id(token_id: str) -> int:
    if not token_id.isdigit() or not 1 <= int(token_id) <= 2**63 - 1:
        raise NotFound("no such token", code="unknown_token")
    return int(token_id)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: Request, viewer: CheckedDep, token_id: str) -> Response:
    row = await users_of(request).revoke_token(viewer.user, _token_id(token_id))
    return redirect(request, "/account", f"token {row.id} ({row.name}) revoked")


@router.post("/account/password")
async def change_password(
    request: Request,
    viewer: CheckedDep,
    current: FormText = None,
    new: FormText = None,
    confirm: FormText = None,
) -> Response:
    if (new or "") != (confirm or ""):
        raise InvalidRequest("the new password and its confirmation differ", code="invalid_form")
    await users_of(request).change_own_password(viewer.user.username, current or "", new or "")
    response = redirect(request, "/login?next=%2Faccount")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- users (admin) -----------------------------------------------------------------------------


@router.get("/users")
async def users_page(request: Request, viewer: AdminDep) -> Response:
    users = await users_of(request).list_users()
    return page(
        request,
        "users.html",
        {"users": sorted(users, key=lambda u: u.username), "roles": list(Role), "from_us": from_us},
        viewer,
    )


def _role(value: str | None) -> Role:
    try:
        return Role(value or "")
    except ValueError:
        raise InvalidRequest("role is admin or viewer", code="invalid_form") from None


@router.post("/users")
async def add_user(
    request: Request,
    viewer: CheckedAdminDep,
    username: FormText = None,
    role: FormText = None,
    password: FormText = None,
) -> Response:
    name = (username or "").strip()
    user = await users_of(request).add_user(name, password or "", _role(role), actor(viewer))
    return redirect(request, "/users", f"user {user.username} added ({user.role.value})")


def _username(value: str) -> str:
    if not value or len(value) > 64:
        raise NotFound("no such user", code="unknown_user")
    return value


@router.post("/users/{username}/role")
async def set_role(
    request: Request, viewer: CheckedAdminDep, username: str, role: FormText = None
) -> Response:
    user = await users_of(request).set_role(_username(username), _role(role), actor(viewer))
    return redirect(request, "/users", f"{user.username} is now {user.role.value}")


@router.post("/users/{username}/disabled")
async def set_disabled(
    request: Request, viewer: CheckedAdminDep, username: str, disabled: FormText = None
) -> Response:
    if disabled not in ("true", "false"):
        raise InvalidRequest("disabled is true or false", code="invalid_form")
    name = _username(username)
    await users_of(request).set_disabled(name, disabled == "true", actor(viewer))
    return redirect(request, "/users", f"{name} {'disabled' if disabled == 'true' else 'enabled'}")
