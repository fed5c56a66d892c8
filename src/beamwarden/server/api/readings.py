"""Room: server/api. ``POST /api/readings`` (and ``/api/geiger/push``), ``GET /api/readings``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from beamwarden.protocol import Page, StoredReading, WireReading
from beamwarden.server.api.deps import (
    CursorQuery,
    LimitDep,
    PrincipalDep,
    ServicesDep,
)
from beamwarden.server.api.views import stored_reading
from beamwarden.server.errors import Forbidden
from beamwarden.server.records import ReadingFilter, to_us
from beamwarden.server.services.credentials import require_reader

router = APIRouter(tags=["readings"])

_ONE_OR_MANY = list[WireReading] | WireReading
READINGS_SCHEMA, READINGS_COMPONENTS = msgspec.json.schema_components(
    [_ONE_OR_MANY], ref_template="#/components/schemas/{name}"
)
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            'One reading, an array of readings, or {"readings": [...]} in any of the three '
            "shapes of PROTOCOL.md; may be sent with Content-Encoding: gzip."
        ),
        "content": {"application/json": {"schema": READINGS_SCHEMA[0]}},
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Schema violation: details name every invalid item by index and field"},
    401: {"description": "No credential, or an unknown or revoked one"},
    403: {"description": "The token may not write for the node a reading names"},
    413: {"description": "Body or batch too large: split it"},
    415: {"description": "Unsupported Content-Encoding"},
    429: {"description": "Overloaded: retry after Retry-After seconds"},
    503: {"description": "Database unavailable: retry after Retry-After seconds"},
}


#: served by :mod:`beamwarden.server.api.ingest_path` (plain ASGI), documented here
INGEST_PATHS = {
    "/api/readings": "Store readings durably (idempotent with reading_id; all or nothing)",
    "/api/geiger/push": "Alias of POST /api/readings for Geiger counters in the field",
}


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI path items of the ingest endpoints (plain ASGI, not FastAPI routes)."""
    responses: dict[str, Any] = {
        "200": {
            "description": "Stored durably",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}
            },
        },
        **{str(code): {"description": info["description"]} for code, info in _ERRORS.items()},
    }
    return {
        path: {
            "post": {
                "tags": ["readings"],
                "summary": summary,
                "operationId": f"post_{path.strip('/').replace('/', '_')}",
                **_BODY,
                "responses": responses,
                "security": [{"HTTPBearer": []}],
            }
        }
        for path, summary in INGEST_PATHS.items()
    }


def confine(principal: PrincipalDep, node_id: str | None) -> str | None:
    """The node a query is about: a node token may read only its own node's data."""
    own = require_reader(principal)
    if own is None:
        return node_id
    if node_id is not None and node_id != own:
        raise Forbidden(f"this token may read only node {own!r}")
    return own


@router.get(
    "/api/readings", response_model=Page[StoredReading], summary="Raw readings, oldest first"
)
async def list_readings(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: LimitDep,
    cursor: CursorQuery = None,
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    sensor_id: Annotated[str | None, Query(max_length=128)] = None,
    sensor_type: Annotated[str | None, Query(max_length=64)] = None,
    field: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[StoredReading]:
    flt = ReadingFilter(
        node_id=confine(principal, node_id),
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        field=field,
        since_us=to_us(since) if since else None,
        until_us=to_us(until) if until else None,
    )
    page = await services.queries.readings(flt, limit, cursor)
    return Page[StoredReading](
        items=[stored_reading(r) for r in page.items], next_cursor=page.next_cursor
    )
