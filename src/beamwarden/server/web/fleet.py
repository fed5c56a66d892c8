"""Room: server/web. The fleet page: a card per node, filters, "N of M online", live refresh.

The page renders the first cards on the server; its script then asks ``/ui/fleet`` (the same
query) for the cards again every ``dashboard_refresh_s`` and swaps them in without a reload.
Listings come from :class:`~beamwarden.server.services.fleet_views.FleetViews` (filters in SQL,
status on the server's clock), a page of cards at a time, so 10 000 nodes cost one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from beamwarden.protocol import NodeStatus
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import NodeFilter
from beamwarden.server.services.container import Services
from beamwarden.server.services.fleet_views import NodePage, StatusCounts

from .rendering import WebRoute, render
from .security import Viewer, ViewerDep, services_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PAGE_SIZE = 60
#: order of statuses in the summary
STATUS_ORDER = (NodeStatus.OFFLINE, NodeStatus.DEGRADED, NodeStatus.ONLINE, NodeStatus.UNKNOWN)
_FLEET = NodeFilter(include_revoked=False)


@dataclass(frozen=True, slots=True)
class FleetQuery:
    q: str = ""
    role: str = ""
    site: str = ""
    status: str = ""
    tag: str = ""
    after: str = ""

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.role or self.site or self.status or self.tag)

    def node_filter(self) -> NodeFilter:
        tag = None
        if self.tag:
            key, sep, value = self.tag.partition("=")
            if not sep or not key.strip():
                raise InvalidRequest("a tag filter is key=value, e.g. rack=4")
            tag = (key.strip(), value.strip())
        return NodeFilter(
            role=self.role or None,
            site=self.site or None,
            tag=tag,
            search=self.q or None,
            include_revoked=False,
        )

    def statuses(self) -> frozenset[NodeStatus] | None:
        if not self.status:
            return None
        try:
            return frozenset({NodeStatus(self.status)})
        except ValueError:
            raise InvalidRequest(f"unknown status {self.status!r}") from None

    def link(self, after: str = "") -> str:
        params = {
            k: v
            for k, v in (
                ("q", self.q),
                ("role", self.role),
                ("site", self.site),
                ("status", self.status),
                ("tag", self.tag),
                ("after", after),
            )
            if v
        }
        return "?" + urlencode(params) if params else "?"


@dataclass(frozen=True, slots=True)
class FleetListing:
    page: NodePage
    fleet: StatusCounts
    """The whole fleet, whatever the filters ("N of M online")."""
    matched: int
    """Nodes the filters match."""


async def fleet_listing(services: Services, query: FleetQuery) -> FleetListing:
    flt = query.node_filter()
    statuses = query.statuses()
    page = await services.fleet.page(
        flt,
        statuses=statuses,
        limit=PAGE_SIZE,
        cursor=query.after or None,
        counts=query.filtered,
        lease_holders=True,
        last_readings=True,
    )
    fleet = await services.fleet.counts(_FLEET)
    matched = fleet.total
    if page.counts is not None:
        matched = sum(page.counts.of(s) for s in statuses) if statuses else page.counts.total
    return FleetListing(page, fleet, matched)


QText = Annotated[str, Query(max_length=200)]


def fleet_query(
    q: QText = "",
    role: QText = "",
    site: QText = "",
    status: QText = "",
    tag: QText = "",
    after: Annotated[str, Query(max_length=512)] = "",
) -> FleetQuery:
    return FleetQuery(q.strip(), role.strip(), site.strip(), status, tag.strip(), after)


FleetQueryDep = Annotated[FleetQuery, Depends(fleet_query)]


async def _render(request: Request, viewer: Viewer, template: str, query: FleetQuery) -> Response:
    listing = await fleet_listing(services_of(request), query)
    return render(
        request,
        template,
        {"listing": listing, "query": query, "statuses": STATUS_ORDER},
        viewer=viewer,
    )


@router.get("/")
async def fleet_page(request: Request, viewer: ViewerDep, query: FleetQueryDep) -> Response:
    return await _render(request, viewer, "fleet.html", query)


@router.get("/ui/fleet")
async def fleet_cards(request: Request, viewer: ViewerDep, query: FleetQueryDep) -> Response:
    """The cards alone: the page's script swaps them in every ``dashboard_refresh_s``."""
    return await _render(request, viewer, "_fleet.html", query)
