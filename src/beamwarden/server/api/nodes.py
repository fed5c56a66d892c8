"""Room: server/api. Nodes: registration, the inventory with computed status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response

from beamwarden.protocol import Page, Registered, Registration
from beamwarden.protocol.vocabulary import IDENT_PATTERN
from beamwarden.server.api.deps import CursorQuery, LimitDep, PrincipalDep, ServicesDep
from beamwarden.server.api.views import NodeInventoryRecord, node_record
from beamwarden.server.errors import Forbidden
from beamwarden.server.services.credentials import require_reader

router = APIRouter(tags=["nodes"])
NodeIdPath = Annotated[str, Path(pattern=IDENT_PATTERN, max_length=64)]


@router.post(
    "/api/nodes/register",
    response_model=Registered,
    status_code=200,
    responses={
        201: {"model": Registered, "description": "Enrolled: the node token is in `token`, once"},
        409: {"description": "The node id is already enrolled"},
    },
    summary="Register a node (node token) or enrol a new one (enrolment key)",
)
async def register(
    reg: Registration, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    outcome = await services.registry.register(principal, reg)
    body = Registered(**node_record(outcome.node).model_dump(), token=outcome.token)
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=outcome.token is None),
        status_code=201 if outcome.created else 200,
    )


@router.get(
    "/api/nodes",
    response_class=Response,
    responses={200: {"model": Page[NodeInventoryRecord], "description": "Nodes by node id"}},
    summary="Nodes with computed status",
)
async def list_nodes(
    services: ServicesDep, principal: PrincipalDep, limit: LimitDep, cursor: CursorQuery = None
) -> Response:
    own = require_reader(principal)
    if own is not None:
        mine = Page[NodeInventoryRecord](items=[node_record(await services.registry.get(own))])
        return Response(mine.model_dump_json(), media_type="application/json")
    # the page's JSON as msgspec makes it from its NodeSummary items, from fragments of each
    # node's JSON the listing keeps (a pydantic model per node cost more than the query)
    body = await services.fleet.page_json(limit=limit, cursor=cursor)
    return Response(body, media_type="application/json")


@router.get(
    "/api/nodes/{node_id}",
    response_model=NodeInventoryRecord,
    summary="One node with computed status",
)
async def get_node(
    node_id: NodeIdPath, services: ServicesDep, principal: PrincipalDep
) -> NodeInventoryRecord:
    own = require_reader(principal)
    if own is not None and own != node_id:
        raise Forbidden(f"this token may read only node {own!r}")
    return node_record(await services.registry.get(node_id))
