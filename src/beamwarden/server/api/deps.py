"""Room: server/api. Dependencies shared by the routers: services, settings, the caller's credential.

Credentials are read from ``Authorization: Bearer <t>`` or, for nodes already in the field, from
``X-BW-Auth: <t>`` or ``X-Device-Token: <t>`` (with ``X-Device-Name: <node_id>``, which must then
name the token's node).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from beamwarden.server.errors import Forbidden
from beamwarden.server.records import Principal
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings

_bearer = HTTPBearer(auto_error=False, description="A node token, enrolment key or user API token")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]


def token_in(headers: Mapping[str, str]) -> str | None:
    """The credential in a request's (lower-case) headers, in the order PROTOCOL.md gives."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return headers.get("x-bw-auth") or headers.get("x-device-token")


def presented_token(request: Request) -> str | None:
    return token_in(request.headers)


async def authenticate_headers(headers: Mapping[str, str], services: Services) -> Principal:
    """The principal of the credential in ``headers``; checks ``X-Device-Name`` if sent."""
    principal = await services.credentials.authenticate(token_in(headers))
    device_name = headers.get("x-device-name")
    if device_name is not None and principal.kind == "node" and device_name != principal.node_id:
        raise Forbidden("X-Device-Name does not match the token's node")
    return principal


async def get_principal(
    request: Request,
    services: ServicesDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authenticate_headers(request.headers, services)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def page_limit(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, description="Items per page (default 100, capped)")
    ] = None,
) -> int:
    settings: ServerSettings = request.app.state.settings
    return settings.list_limit_default if limit is None else min(limit, settings.list_limit_max)


LimitDep = Annotated[int, Depends(page_limit)]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="The next_cursor of the previous page")
]
