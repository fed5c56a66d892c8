"""Room: server/api. Exceptions → HTTP status codes and the error envelope of PROTOCOL.md.

The only place that knows HTTP status codes for the server's and the protocol's exceptions.
Every error answers ``{"error": {"code", "message", "details", "request_id"}}`` with the same
``X-Request-Id`` header, including FastAPI's own validation errors (400, not 422) and 404/405s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from beamwarden.fleet.errors import FleetError, InvalidLease, LeaseHeld
from beamwarden.fleet.leases import LeaseRefusal
from beamwarden.protocol import BatchTooLarge, SchemaViolation, UnsupportedProtocolVersion
from beamwarden.server.api.body import BodyTooLarge, UnsupportedEncoding
from beamwarden.server.context import current_request_id
from beamwarden.server.errors import (
    Overloaded,
    ServerError,
    StoreUnavailable,
    Unauthenticated,
    http_status,
)
from beamwarden.server.metrics import ServerMetrics

log = logging.getLogger("beamwarden.api")


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    rid = current_request_id()
    body = {
        "error": {"code": code, "message": message, "details": details or [], "request_id": rid}
    }
    out_headers = {"X-Request-Id": rid} if rid else {}
    if headers:
        out_headers.update(headers)
    return Response(orjson.dumps(body), status, out_headers, media_type="application/json")


def lease_held_response(refused: LeaseRefusal) -> Response:
    """409 ``lease_held``, naming the holder: its id, host, IP, epoch, since when, time left."""
    return error_response(
        409,
        "lease_held",
        refused.message,
        [
            {
                "holder": refused.holder.holder_id,
                "hostname": refused.holder.hostname,
                "ip": refused.holder.ip,
                "epoch": refused.epoch,
                "acquired_at": refused.acquired_at.isoformat().replace("+00:00", "Z"),
                "time_left_seconds": refused.time_left.total_seconds(),
            }
        ],
    )


def response_for(exc: Exception, metrics: ServerMetrics | None = None) -> Response:
    """The error answer for an exception of the protocol or the server (500 for anything else)."""
    if isinstance(exc, SchemaViolation):
        details = [issue.as_dict() for issue in exc.issues]
        if isinstance(exc, BatchTooLarge):
            return error_response(413, "batch_too_large", exc.message, details)
        return error_response(400, "schema_violation", exc.message, details)
    if isinstance(exc, UnsupportedProtocolVersion):
        return error_response(400, "unsupported_protocol_version", str(exc))
    if isinstance(exc, BodyTooLarge):
        return error_response(413, exc.code, exc.message)
    if isinstance(exc, UnsupportedEncoding):
        return error_response(415, exc.code, exc.message)
    if isinstance(exc, FleetError):
        if isinstance(exc, LeaseHeld):
            return lease_held_response(exc.refusal)
        # a refused state change or a stale fencing epoch: 409; a lease that can never be: 400
        return error_response(400 if isinstance(exc, InvalidLease) else 409, exc.code, str(exc))
    if isinstance(exc, ServerError):
        if isinstance(exc, StoreUnavailable) and metrics is not None:
            metrics.db_errors.labels("request").inc()
        status = http_status(exc)
        if status is not None:
            headers = None
            if isinstance(exc, StoreUnavailable | Overloaded):
                headers = {"Retry-After": str(exc.retry_after)}
            if isinstance(exc, Unauthenticated):
                headers = {"WWW-Authenticate": "Bearer"}
            return error_response(status, exc.code, exc.message, headers=headers)
        log.error("unmapped server error %s: %s", type(exc).__name__, exc)
    else:
        log.error("unhandled error", exc_info=exc)
    return error_response(
        500, "internal_error", "the server failed; the request id helps find out why"
    )


async def _known_error(request: Request, exc: Exception) -> Response:
    services = getattr(request.app.state, "services", None)
    return response_for(exc, services.metrics if services is not None else None)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "IPv4Address", "IPv6Address", "datetime"})


def _field_path(loc: tuple[Any, ...]) -> str:
    """``("body", "ip_address", "function-after[...]")`` → ``ip_address``; ``("query", "limit")``
    → ``query:limit``. Pydantic's union-member and validator tags are dropped."""
    parts = [str(p) for p in loc if "[" not in str(p) and str(p) not in _TYPE_TAGS]
    if parts and parts[0] == "body":
        return ".".join(parts[1:])
    if parts and parts[0] in ("query", "path", "header"):
        return f"{parts[0]}:{'.'.join(parts[1:])}"
    return ".".join(parts)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc.errors())


def validation_response(errors: Sequence[Mapping[str, Any]]) -> Response:
    """400 ``schema_violation`` for pydantic's errors (``loc`` starting with ``"body"``,
    ``"query"`` …), as FastAPI's own validation errors are answered."""
    details: list[dict[str, Any]] = []
    for err in errors:
        detail = {
            "field": _field_path(tuple(err.get("loc", ()))),
            "message": str(err.get("msg", "invalid")),
        }
        if detail not in details:
            details.append(detail)
    return error_response(
        400, "schema_violation", "the request does not follow the schema", details
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}
    code = codes.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(
        500, "internal_error", "the server failed; the request id helps find out why"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SchemaViolation, _known_error)
    app.add_exception_handler(UnsupportedProtocolVersion, _known_error)
    app.add_exception_handler(ServerError, _known_error)
    app.add_exception_handler(FleetError, _known_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
