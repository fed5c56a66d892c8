"""Room: server/api. ``POST /api/telemetry``: heartbeats, acknowledged before they are written."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from beamwarden.protocol import Telemetry
from beamwarden.server.api.deps import PrincipalDep, ServicesDep

router = APIRouter(tags=["nodes"])


@router.post(
    "/api/telemetry",
    status_code=202,
    summary="A heartbeat (acknowledged at once, written in batches)",
    responses={202: {"description": "Accepted"}},
)
async def post_telemetry(
    msg: Telemetry, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    warning = await services.heartbeats.accept(principal, msg)
    headers = {"Warning": warning} if warning else None
    return JSONResponse({"status": "accepted"}, status_code=202, headers=headers)
