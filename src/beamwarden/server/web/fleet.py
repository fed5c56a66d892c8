"""Room: server/web. The fleet page: a card per node, filters, "N of M online", live refresh.

The page renders the first cards on the server; its script then asks ``/ui/fleet`` (the same
query) for the cards again every ``dashboard_refresh_s`` and swaps them in without a reload.
Status, heartbeat age and uptime are computed on the server's clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from beamwarden.protocol import NodeStatus
from beamwarden.server.services.container import Services
from beamwarden.server.services.registry import NodeView

from .rendering import WebRoute, render
from .security import ViewerDep, services_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PAGE_SIZE = 60
#: order of statuses in the summary and in a "status first" sort
STATUS_ORDER = (NodeStatus.OFFLINE, NodeStatus.DEGRADED, NodeStatus.ONLINE, NodeStatus.UNKNOWN)
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class FleetQuery:
    q: str = ""
    role: str = ""
    site: str = ""
    status: str = ""
    tag: str = ""
    page: int = 1

    def matches(self, view: NodeView) -> bool:
        row = view.row
        if self.role and row.role != self.role:
            return False
        if self.site and (row.site or "") != self.site:
            return False
        if self.status and view.status.value != self.status:
            return False
        if self.tag:
            key, _, value = self.tag.partition("=")
            tags = {**row.reported_tags, **row.operator_tags}
            if key not in tags or (value and tags[key] != value):
                return False
        if self.q:
            needle = self.q.lower()
            hay = " ".join(
                x or ""
                for x in (row.node_id, row.display_name, row.hostname, row.ip_address, row.room)
            ).lower()
            if needle not in hay:
                return False
        return True

    def link(self, page: int) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("q", self.q),
                ("role", self.role),
                ("site", self.site),
                ("status", self.status),
                ("tag", self.tag),
            )
            if v
        ]
        parts.append(f"page={page}")
        return "?" + "&".join(parts)


@dataclass(slots=True)
class FleetListing:
    nodes: list[NodeView]
    total: int
    matched: int
    counts: Counter[str]
    roles: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    page: int = 1
    pages: int = 1


async def all_nodes(services: Services) -> list[NodeView]:
    views: list[NodeView] = []
    after: str | None = None
    while True:
        chunk = await services.registry.list(_CHUNK, after)
        views.extend(chunk)
        if len(chunk) < _CHUNK:
            return views
        after = chunk[-1].row.node_id


async def fleet_listing(services: Services, query: FleetQuery) -> FleetListing:
    views = [v for v in await all_nodes(services) if v.row.revoked_us is None]
    counts = Counter(v.status.value for v in views)
    matched = [v for v in views if query.matches(v)]
    pages = max(1, -(-len(matched) // PAGE_SIZE))
    page = min(max(1, query.page), pages)
    return FleetListing(
        nodes=matched[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        total=len(views),
        matched=len(matched),
        counts=counts,
        roles=sorted({v.row.role for v in views}),
        sites=sorted({v.row.site for v in views if v.row.site}),
        page=page,
        pages=pages,
    )


def _query(q: str, role: str, site: str, status: str, tag: str, page: int) -> FleetQuery:
    return FleetQuery(q.strip(), role, site, status, tag.strip(), page)


QText = Annotated[str, Query(max_length=200)]


@router.get("/")
async def fleet_page(
    request: Request,
    viewer: ViewerDep,
    q: QText = "",
    role: QText = "",
    site: QText = "",
    status: QText = "",
    tag: QText = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    query = _query(q, role, site, status, tag, page)
    listing = await fleet_listing(services_of(request), query)
    return render(
        request,
        "fleet.html",
        {"listing": listing, "query": query, "statuses": STATUS_ORDER},
        viewer=viewer,
    )


@router.get("/ui/fleet")
async def fleet_cards(
    request: Request,
    viewer: ViewerDep,
    q: QText = "",
    role: QText = "",
    site: QText = "",
    status: QText = "",
    tag: QText = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    query = _query(q, role, site, status, tag, page)
    listing = await fleet_listing(services_of(request), query)
    return render(
        request,
        "_fleet.html",
        {"listing": listing, "query": query, "statuses": STATUS_ORDER},
        viewer=viewer,
    )
