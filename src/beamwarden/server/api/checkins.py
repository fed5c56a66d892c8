"""Room: server/api. Check-ins: jobs ping the server; operators add, list and remove checks.

| endpoint | credential |
|---|---|
| ``POST /api/checkins/{slug}`` · ``POST /api/checkins/{slug}/fail`` | the slug itself (a secret) |
| ``POST /api/checkins`` (answers the slug once) · ``DELETE /api/checkins/{name}`` | ``admin`` |
| ``GET /api/checkins`` | ``read`` |

A ping's body (optional, plain text, the first 1000 characters) is kept as its message: a job can
send the tail of its log with a failure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from beamwarden.protocol import Scope as CredentialScope
from beamwarden.server.alert_records import CheckinRow
from beamwarden.server.api.alerts import AlertingDep
from beamwarden.server.api.deps import PrincipalDep, ServicesDep
from beamwarden.server.records import from_us
from beamwarden.server.services.checkins import CHECKIN_NAME_PATTERN
from beamwarden.server.services.credentials import require, require_reader

router = APIRouter(tags=["checkins"])

MESSAGE_MAX = 1000
Slug = Annotated[str, Path(min_length=8, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


class CheckinIn(BaseModel):
    name: str = Field(pattern=CHECKIN_NAME_PATTERN, description="e.g. nightly-backup")
    every: str | None = Field(None, max_length=32, description="An interval: 1d, 6h, 90m")
    cron: str | None = Field(None, max_length=128, description="Five fields, UTC: 30 2 * * *")
    grace: str = Field("5m", max_length=32, description="Lateness allowed before alerting")


class CheckinOut(BaseModel):
    name: str
    every_seconds: float | None
    cron: str | None
    grace_seconds: float
    created_at: datetime
    last_ping_at: datetime | None
    last_status: str | None
    last_message: str | None
    next_due: datetime | None
    alerting: bool
    reason: str


class CheckinCreated(CheckinOut):
    slug: str = Field(description="The secret of the ping URL, shown this once")
    ping_url: str


class CheckinPage(BaseModel):
    items: list[CheckinOut]
    next_cursor: str | None = None


class PingOut(BaseModel):
    name: str
    status: str


def _out(row: CheckinRow, now: datetime, alerting_svc: AlertingDep) -> CheckinOut:
    due, alerting, why = alerting_svc.alerts.checkins.status(row, now)
    return CheckinOut(
        name=row.name,
        every_seconds=row.every_s,
        cron=row.cron,
        grace_seconds=row.grace_s,
        created_at=from_us(row.created_us),
        last_ping_at=None if row.last_ping_us is None else from_us(row.last_ping_us),
        last_status=row.last_status,
        last_message=row.last_message,
        next_due=due,
        alerting=alerting,
        reason=why,
    )


async def _message(request: Request) -> str | None:
    raw = await request.body()
    if not raw:
        return None
    return raw[: MESSAGE_MAX * 4].decode("utf-8", "replace")[:MESSAGE_MAX]


@router.post("/api/checkins/{slug}", response_model=PingOut, summary="A job succeeded")
async def ping(slug: Slug, request: Request, alerting: AlertingDep) -> PingOut:
    row = await alerting.alerts.checkins.ping(slug, True, await _message(request))
    return PingOut(name=row.name, status="success")


@router.post("/api/checkins/{slug}/fail", response_model=PingOut, summary="A job failed")
async def ping_fail(slug: Slug, request: Request, alerting: AlertingDep) -> PingOut:
    row = await alerting.alerts.checkins.ping(slug, False, await _message(request))
    return PingOut(name=row.name, status="fail")


@router.post(
    "/api/checkins",
    response_model=CheckinCreated,
    status_code=201,
    summary="Add a check (the slug is answered once)",
)
async def add_checkin(
    body: CheckinIn,
    request: Request,
    alerting: AlertingDep,
    services: ServicesDep,
    principal: PrincipalDep,
) -> CheckinCreated:
    require(principal, CredentialScope.ADMIN)
    made = await alerting.alerts.checkins.create(
        body.name,
        every=body.every,
        cron=body.cron,
        grace=body.grace,
        actor=f"{principal.kind}:{principal.name}",
    )
    out = _out(made.row, services.clock.now(), alerting)
    url = str(request.url_for("ping", slug=made.slug))
    return CheckinCreated(**out.model_dump(), slug=made.slug, ping_url=url)


@router.get("/api/checkins", response_model=CheckinPage, summary="The checks and their state")
async def list_checkins(
    alerting: AlertingDep, services: ServicesDep, principal: PrincipalDep
) -> CheckinPage:
    if require_reader(principal) is not None:
        require(principal, CredentialScope.READ)
    now = services.clock.now()
    return CheckinPage(
        items=[_out(r, now, alerting) for r in await alerting.alerts.checkins.list()]
    )


@router.delete("/api/checkins/{name}", status_code=204, summary="Remove a check")
async def delete_checkin(
    name: Annotated[str, Path(pattern=CHECKIN_NAME_PATTERN)],
    alerting: AlertingDep,
    principal: PrincipalDep,
) -> None:
    require(principal, CredentialScope.ADMIN)
    await alerting.alerts.checkins.delete(name, f"{principal.kind}:{principal.name}")
