"""Room: server/api. ``POST /api/readings`` and ``/api/geiger/push`` as plain ASGI: the hot path.

Measured (bench/bench_ingest_single.py, storage off): FastAPI's dependency solving and Starlette's
routing and exception layers cost more than everything else in a single-reading request together,
so the request-context middleware hands these two paths straight to :func:`handle_ingest`. It does
what the routed endpoints do — credential, body limits, ingest, the error envelope through the same
:func:`~beamwarden.server.api.errors.response_for` — with none of the framework in between. The
OpenAPI document describes them (:func:`beamwarden.server.api.readings.openapi_paths`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Receive, Scope, Send

from beamwarden.server.api.body import read_body
from beamwarden.server.api.deps import authenticate_headers
from beamwarden.server.api.errors import response_for
from beamwarden.server.api.readings import INGEST_PATHS
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings

PATHS = frozenset(INGEST_PATHS)
_JSON = (b"content-type", b"application/json")


class ClientGone(Exception):
    """The client disconnected before sending the whole body: nobody is left to answer."""


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as they come; raises ClientGone if the client leaves first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def handle_ingest(scope: Scope, receive: Receive, send: Send) -> None:
    state = scope["app"].state
    services: Services = state.services
    settings: ServerSettings = state.settings
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        principal = await authenticate_headers(headers, services)
        body = await read_body(
            body_chunks(receive),
            settings.max_body_bytes,
            headers.get("content-encoding"),
            headers.get("content-length"),
        )
        outcome = await services.ingest.ingest(principal, body)
    except ClientGone:
        return
    except Exception as exc:
        await response_for(exc, services.metrics)(scope, receive, send)
        return
    payload = b'{"accepted":%d,"duplicates":%d}' % (outcome.accepted, outcome.duplicates)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [_JSON, (b"content-length", b"%d" % len(payload))],
        }
    )
    await send({"type": "http.response.body", "body": payload})
