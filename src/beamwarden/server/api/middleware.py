"""Room: server/api. The request context: a request id on every response and log line, and timing.

A plain ASGI middleware (no per-request task or body buffering, unlike BaseHTTPMiddleware), since
it sits on the ingest hot path, which it hands to :mod:`.ingest_path` without the framework (and
heartbeats to :func:`.telemetry.handle_telemetry`).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beamwarden.server.api.ingest_path import PATHS, handle_ingest
from beamwarden.server.api.telemetry import handle_telemetry, takes_fast_path
from beamwarden.server.context import request_id_var
from beamwarden.server.metrics import ServerMetrics

_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
#: request ids: a random prefix per process and a counter (unique without a uuid4 per request)
_PREFIX = secrets.token_hex(6).encode()
_COUNTER = itertools.count(1)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics
        #: (method, route, status) → the labelled histogram and counter (bounded: routes are
        #: templates, methods a fixed set, statuses three digits)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value
                break
        if not rid or _ID_RE.fullmatch(rid) is None:
            rid = b"%s%010x" % (_PREFIX, next(_COUNTER))
        request_id_var.set(rid.decode())
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", rid))
                message = {**message, "headers": headers}
            await send(message)

        ingest = scope["method"] == "POST" and scope["path"] in PATHS
        fast = ingest or takes_fast_path(scope)
        try:
            if ingest:
                await handle_ingest(scope, receive, send_with_id)
            elif fast:
                await handle_telemetry(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            if route is not None:
                path = route.path
            elif fast or "endpoint" in scope:  # plain ASGI or Starlette routes: static paths
                path = scope["path"]
            else:
                path = "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            key = (method, path, status)
            children = self._children.get(key)
            if children is None:  # labels() costs more than the observation: look it up once
                children = self._children[key] = (
                    self.metrics.http_latency.labels(method, path),
                    self.metrics.http_requests.labels(method, path, str(status)),
                )
            children[0].observe(time.perf_counter() - started)
            children[1].inc()
