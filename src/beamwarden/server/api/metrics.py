"""Room: server/api. ``GET /metrics`` in the Prometheus text format.

Open to the networks in ``metrics_allow_from`` (default: loopback); anyone else needs a token with
the ``metrics`` scope.
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from beamwarden.protocol import NodeStatus, Scope
from beamwarden.server.api.deps import ServicesDep, SettingsDep, presented_token
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.services.credentials import require

router = APIRouter(tags=["metrics"])


def allowed_network(host: str | None, networks: list[str]) -> bool:
    """Whether ``host`` is an address in one of ``networks`` (CIDR)."""
    if host is None:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net, strict=False) for net in networks)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request, services: ServicesDep, settings: SettingsDep) -> Response:
    client = request.client.host if request.client else None
    if not allowed_network(client, settings.metrics_allow_from):
        principal = await services.credentials.authenticate(presented_token(request))
        require(principal, Scope.METRICS)
    await _count_nodes(services)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _count_nodes(services: ServicesDep) -> None:
    try:
        counts = await services.fleet.counts()  # three columns a node: cheap for 10 000
    except StoreUnavailable:
        services.metrics.db_errors.labels("metrics").inc()
        return
    for status in NodeStatus:
        services.metrics.nodes_by_status.labels(status.value).set(counts.of(status))
