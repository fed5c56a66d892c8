"""Room: server/api. Dependencies shared by the routers: services, settings, the caller's credential.

Credentials are read from ``Authorization: Bearer <t>`` or, for nodes already in the field, from
``X-BW-Auth: <t>`` or ``X-Device-Token: <t>`` (with ``X-Device-Name: <node_id>``, which must then
name the token's node).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from beamwarden.server.errors import Forbidden
from beamwarden.server.records import Principal
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings

_bearer = HTTPBearer(auto_error=False, description="A node token, enrolment key or user API token")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]


def presented_token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return request.headers.get("x-bw-auth") or request.headers.get("x-device-token")


async def get_principal(
    request: Request,
    services: ServicesDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = await services.credentials.authenticate(presented_token(request))
    device_name = request.headers.get("x-device-name")
    if device_name is not None and principal.kind == "node" and device_name != principal.node_id:
        raise Forbidden("X-Device-Name does not match the token's node")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def page_limit(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, description="Items per page (default 100, capped)")
    ] = None,
) -> int:
    settings = get_settings(request)
    return settings.list_limit_default if limit is None else min(limit, settings.list_limit_max)


LimitDep = Annotated[int, Depends(page_limit)]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="The next_cursor of the previous page")
]
