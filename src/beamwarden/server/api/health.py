"""Room: server/api. Health: live (the process answers), ready (the database answers), detail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from beamwarden import __version__
from beamwarden.server.api.deps import PrincipalDep, ServicesDep
from beamwarden.server.api.errors import error_response
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.services.credentials import require_reader

router = APIRouter(tags=["health"])


@router.get("/api/health/live", summary="The process answers")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/api/health/ready",
    summary="The database answers (503 otherwise)",
    responses={503: {"description": "The database is unavailable"}},
)
async def ready(services: ServicesDep, request: Request) -> Any:
    try:
        latency = await services.store.ping()
    except StoreUnavailable as exc:
        return error_response(
            503, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)}
        )
    return {"status": "ok", "database_latency_ms": round(latency * 1000, 3)}


@router.get("/api/health", summary="Per-component detail (never a secret)")
async def detail(services: ServicesDep, principal: PrincipalDep, request: Request) -> JSONResponse:
    require_reader(principal)
    database: dict[str, Any] = {"backend": request.app.state.backend}
    try:
        database["latency_ms"] = round(await services.store.ping() * 1000, 3)
        database["status"] = "ok"
    except StoreUnavailable as exc:
        database["status"] = "unavailable"
        database["error"] = exc.message
    components = {
        "database": database,
        "ingest": {"status": "ok", "pending_readings": services.committer.pending_readings},
        "heartbeats": {
            "status": "ok",
            "buffered": services.heartbeats.buffered,
            "dropped": services.heartbeats.dropped,
        },
    }
    status = "ok" if database["status"] == "ok" else "degraded"
    return JSONResponse(
        {"status": status, "version": __version__, "components": components},
        status_code=200 if status == "ok" else 503,
    )
