"""Room: server/api. ``POST|PUT|DELETE /api/leases/{name}``: exclusive leases for outside workers.

``POST`` claims (or, by its holder, renews), ``PUT`` renews, ``DELETE`` releases; each answers
``200`` with the lease and its fencing ``epoch``, or ``409`` in the error envelope: ``lease_held``
naming the holder (host, IP, acquired at, time left) or ``lease_not_held`` when the caller's lease
is gone (expired, or taken over). The caller stops working on the resource on any ``409``.

Who may: a node token (a bridge, a worker on a node) or an ``admin`` user token. The leases the
server holds itself (``node:*`` for nodes' instances, ``sweeper:*``, ``bridge:*``, ``server:*``,
``alert-evaluator``, ``rollups``: see ``services.leases.is_server_lease``) are admin-only here:
an outside worker holding one would pause a job of the fleet. The holder id is an identity, not a secret (a refusal names it): the
credential is what authenticates the caller.

The service is ``Services.leases`` (:class:`~beamwarden.server.services.leases.LeaseService`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from beamwarden.fleet.leases import DEFAULT_TTL, Grant, Holder, Lease, LeaseRefusal, refusal
from beamwarden.protocol import Scope
from beamwarden.server.api.deps import PrincipalDep
from beamwarden.server.api.errors import error_response, lease_held_response
from beamwarden.server.errors import Forbidden
from beamwarden.server.records import Principal
from beamwarden.server.services.leases import LeaseService, is_server_lease

router = APIRouter(tags=["leases"])

#: the longest TTL a caller may ask for (a day): a crashed holder blocks at most this long
MAX_TTL_SECONDS = 86_400.0
LEASE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"

LeaseName = Annotated[
    str, Path(pattern=LEASE_NAME_PATTERN, max_length=200, description="The resource's name")
]
HolderId = Annotated[
    str, Field(min_length=1, max_length=128, description="The holder's id (one per process)")
]


class LeaseClaim(BaseModel):
    """``POST`` and ``PUT``: who claims or renews, for how long, and where it runs."""

    holder: HolderId
    ttl_seconds: float = Field(
        DEFAULT_TTL.total_seconds(), gt=0, le=MAX_TTL_SECONDS, description="Seconds after renewal"
    )
    hostname: str | None = Field(None, max_length=255)
    ip: str | None = Field(None, max_length=64, description="Defaults to the caller's address")


class LeaseRenewal(BaseModel):
    """``PUT``: the holder renewing, and a new TTL if it wants one (else the lease's own)."""

    holder: HolderId
    ttl_seconds: float | None = Field(None, gt=0, le=MAX_TTL_SECONDS)


class LeaseRelease(BaseModel):
    holder: HolderId


class LeaseGrant(BaseModel):
    """A lease as granted: ``epoch`` fences every write made under it."""

    name: str
    holder: str
    hostname: str | None
    ip: str | None
    epoch: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    ttl_seconds: float


class LeaseReleased(BaseModel):
    name: str
    released: bool
    epoch: int


async def get_leases(request: Request) -> LeaseService:
    leases: LeaseService = request.app.state.services.leases
    return leases


LeasesDep = Annotated[LeaseService, Depends(get_leases)]

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Held by another holder (named), or no longer held by you"}
}


def _may_use(principal: Principal, name: str) -> str:
    """The actor for the activity log; raises Forbidden if the principal may not use ``name``."""
    if not principal.has(Scope.ADMIN):
        if principal.kind != "node":
            raise Forbidden("leases are for node tokens and admin tokens")
        if is_server_lease(name):
            raise Forbidden(
                f"lease {name!r} is one the server holds itself (nodes' instances, its jobs, the "
                "MQTT bridge): only an admin token may touch it"
            )
    return f"{principal.kind}:{principal.name}"


def _granted(lease: Lease) -> LeaseGrant:
    return LeaseGrant(
        name=lease.name,
        holder=lease.holder.holder_id,
        hostname=lease.holder.hostname,
        ip=lease.holder.ip,
        epoch=lease.epoch,
        acquired_at=lease.acquired_at,
        renewed_at=lease.renewed_at,
        expires_at=lease.expires_at,
        ttl_seconds=lease.ttl.total_seconds(),
    )


def _iso(when: datetime) -> str:
    """As the response models write times (UTC with ``Z``)."""
    return when.isoformat().replace("+00:00", "Z")


def _held(refused: LeaseRefusal) -> Response:
    return lease_held_response(refused)


async def _not_held(leases: LeaseService, name: str, holder_id: str) -> Response:
    """409 for a renewal or release by a caller that does not hold the lease."""
    current = await leases.get(name)
    if current is not None:
        now = leases.clock.now()
        return _held(refusal(current, now))
    return error_response(
        409,
        "lease_not_held",
        f"{holder_id} does not hold lease {name!r}: it expired or was released",
    )


@router.post(
    "/api/leases/{name}",
    response_model=LeaseGrant,
    responses=_CONFLICT,
    summary="Claim a lease (its holder claiming again renews it)",
)
async def acquire_lease(
    name: LeaseName, claim: LeaseClaim, request: Request, leases: LeasesDep, principal: PrincipalDep
) -> LeaseGrant | Response:
    actor = _may_use(principal, name)
    ip = claim.ip or (request.client.host if request.client else None)
    holder = Holder(claim.holder, claim.hostname, ip)
    result = await leases.acquire(name, holder, timedelta(seconds=claim.ttl_seconds), actor=actor)
    if isinstance(result, Grant):
        return _granted(result.lease)
    return _held(result)


@router.put(
    "/api/leases/{name}",
    response_model=LeaseGrant,
    responses=_CONFLICT,
    summary="Renew a lease you hold",
)
async def renew_lease(
    name: LeaseName, claim: LeaseRenewal, leases: LeasesDep, principal: PrincipalDep
) -> LeaseGrant | Response:
    _may_use(principal, name)
    ttl = None if claim.ttl_seconds is None else timedelta(seconds=claim.ttl_seconds)
    renewed = await leases.renew(name, claim.holder, ttl)
    if renewed is None:
        return await _not_held(leases, name, claim.holder)
    return _granted(renewed)


@router.delete(
    "/api/leases/{name}",
    response_model=LeaseReleased,
    responses=_CONFLICT,
    summary="Release a lease you hold",
)
async def release_lease(
    name: LeaseName, body: LeaseRelease, leases: LeasesDep, principal: PrincipalDep
) -> LeaseReleased | Response:
    actor = _may_use(principal, name)
    released = await leases.release_lease(name, body.holder, actor=actor)
    if released is None:
        return await _not_held(leases, name, body.holder)
    return LeaseReleased(name=name, released=True, epoch=released.epoch)
