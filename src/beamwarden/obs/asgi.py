"""Room: obs (stands alone). The endpoints as a plain ASGI 3 application (no framework needed).

Run it alone (``uvicorn module:app``) or mount it (``app.mount("/obs", obs_asgi)`` in
Starlette/FastAPI; :mod:`.starlette_adapter`). Paths are taken relative to ``root_path``, so a
mount point needs no configuration. Store work runs in worker threads, a page at a time, so a
long ``/logs`` stream neither blocks the event loop nor holds more than one page in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from .endpoints import ObsEndpoints, Request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_DONE = object()


def relative_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def _next(iterator: Iterator[bytes]) -> object:
    return next(iterator, _DONE)


class ObsAsgiApp:
    def __init__(self, endpoints: ObsEndpoints) -> None:
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(
            method=scope.get("method", "GET"),
            path=relative_path(scope),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        )
        response = await asyncio.to_thread(self.endpoints.handle, request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
                ],
            }
        )
        body = iter(response.body)
        try:
            while True:
                chunk = await asyncio.to_thread(_next, body)
                if chunk is _DONE:
                    break
                assert isinstance(chunk, bytes)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
