"""Room: server/api. ``GET /api/events``: the activity log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from beamwarden.protocol import Event, Page
from beamwarden.server.api.deps import CursorQuery, LimitDep, PrincipalDep, ServicesDep
from beamwarden.server.api.readings import confine
from beamwarden.server.api.views import event
from beamwarden.server.records import EventFilter, to_us

router = APIRouter(tags=["events"])


@router.get("/api/events", response_model=Page[Event], summary="The activity log, newest first")
async def list_events(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: LimitDep,
    cursor: CursorQuery = None,
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[Event]:
    flt = EventFilter(
        node_id=confine(principal, node_id),
        kind=kind,
        since_us=to_us(since) if since else None,
        until_us=to_us(until) if until else None,
    )
    page = await services.queries.events(flt, limit, cursor)
    return Page[Event](items=[event(r) for r in page.items], next_cursor=page.next_cursor)
