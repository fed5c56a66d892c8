"""Room: server/api. ``POST /api/telemetry``: heartbeats, acknowledged before they are written.

10 000 nodes every 30 s is 333 heartbeats a second; FastAPI's routing, dependency solving and
exception layers cost more than the heartbeat itself (bench/bench_fleet_heartbeats.py), so the
request-context middleware hands a plain JSON heartbeat to :func:`handle_telemetry`, which does
what the routed endpoint does in the same order — body, credential, schema, accept — with the
same answers and error envelope. Anything else (another content type, a gzip body) takes the
routed endpoint, which also gives the OpenAPI document its description.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from beamwarden.protocol import Telemetry
from beamwarden.server.api.body import read_body
from beamwarden.server.api.deps import PrincipalDep, ServicesDep, authenticate_headers
from beamwarden.server.api.errors import response_for, validation_response
from beamwarden.server.api.ingest_path import ClientGone, body_chunks
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings

router = APIRouter(tags=["nodes"])

TELEMETRY_PATH = "/api/telemetry"
_ACCEPTED = b'{"status":"accepted"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ACCEPTED))]


@router.post(
    TELEMETRY_PATH,
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


def takes_fast_path(scope: Scope) -> bool:
    """A POST of a plain JSON body to the telemetry path (else: the routed endpoint)."""
    if scope["method"] != "POST" or scope["path"] != TELEMETRY_PATH:
        return False
    plain = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            plain = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif name == b"content-encoding":
            return False
    return plain


async def handle_telemetry(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /api/telemetry`` without the framework (see the module docstring)."""
    state = scope["app"].state
    services: Services = state.services
    settings: ServerSettings = state.settings
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        body = await read_body(
            body_chunks(receive), settings.max_body_bytes, None, headers.get("content-length")
        )
        if not body:
            answer = validation_response([{"loc": ("body",), "msg": "Field required"}])
            await answer(scope, receive, send)
            return
        try:
            document = json.loads(body)  # what FastAPI uses: the same documents refused
        except json.JSONDecodeError as exc:
            answer = validation_response([{"loc": ("body", exc.pos), "msg": "JSON decode error"}])
            await answer(scope, receive, send)
            return
        principal = await authenticate_headers(headers, services)
        try:
            msg = Telemetry.model_validate(document, from_attributes=True)  # as FastAPI does
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            await validation_response(errors)(scope, receive, send)
            return
        warning = await services.heartbeats.accept(principal, msg)
    except ClientGone:
        return  # nobody is left to answer
    except Exception as exc:
        await response_for(exc, services.metrics)(scope, receive, send)
        return
    out = _HEADERS if not warning else [*_HEADERS, (b"warning", warning.encode("latin-1"))]
    await send({"type": "http.response.start", "status": 202, "headers": out})
    await send({"type": "http.response.body", "body": _ACCEPTED})
