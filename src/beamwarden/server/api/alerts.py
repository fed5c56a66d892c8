"""Room: server/api. Alerts: what is firing, the rules, silences, notifications, Geiger summaries.

| endpoint | credential |
|---|---|
| ``GET /api/alerts`` | ``read`` (a node token sees its own node's alerts) |
| ``GET /api/alert-rules`` | ``read`` |
| ``PUT /api/alert-rules`` | ``admin``; the body is the rules document as JSON (the TOML's shape) |
| ``GET /api/silences`` | ``read`` |
| ``POST /api/silences`` · ``DELETE /api/silences/{id}`` | ``admin`` |
| ``GET /api/notifications`` · ``POST /api/notifications/test`` | ``admin`` |
| ``GET /api/geiger/summary`` | ``read`` (or the node's own token) |

The services are on ``app.state.alerting`` (:class:`Alerting`); a rules document that does not
parse answers ``400 invalid_rules`` whose message names the rule and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from beamwarden.fleet.alerts import Scope, Silence, parse_duration
from beamwarden.fleet.geiger import GeigerSummary
from beamwarden.protocol import Scope as CredentialScope
from beamwarden.server.alert_records import NotificationRow, SilenceRow
from beamwarden.server.api.deps import LimitDep, PrincipalDep, ServicesDep
from beamwarden.server.api.readings import confine
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import from_us
from beamwarden.server.services.alerts import AlertService, FiringAlert
from beamwarden.server.services.container import Services
from beamwarden.server.services.credentials import require, require_reader
from beamwarden.server.services.geiger import geiger_window
from beamwarden.server.services.queries import parse_bucket

router = APIRouter(tags=["alerts"])


@dataclass(frozen=True, slots=True)
class Alerting:
    """What the alert routes use; the app builds it (``app.state.alerting``)."""

    alerts: AlertService


async def get_alerting(request: Request) -> Alerting:
    alerting: Alerting = request.app.state.alerting
    return alerting


AlertingDep = Annotated[Alerting, Depends(get_alerting)]


# --- models -----------------------------------------------------------------------------------


class FiringOut(BaseModel):
    rule: str
    subject: str
    node_id: str | None
    sensor_id: str | None
    field: str | None
    severity: str
    since: datetime | None
    value: float | None
    last_notified: datetime | None
    silenced: bool


class FiringPage(BaseModel):
    items: list[FiringOut]
    next_cursor: str | None = None


class RulesOut(BaseModel):
    document: dict[str, Any]
    source: str
    rules: list[str] = []


class SilenceIn(BaseModel):
    """A silence: which rules (none: every rule), which subjects (scope), until when."""

    name: str = Field("", max_length=128)
    rules: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=100
    )
    scope: dict[str, Any] = Field(
        default_factory=dict, description="node, role, site, room, sensor_type, sensor_id lists"
    )
    starts: AwareDatetime | None = Field(None, description="Default: now")
    ends: AwareDatetime | None = Field(None, description="Give ends or duration")
    duration: str | None = Field(None, max_length=32, description="e.g. 2h, 30m")
    comment: str = Field("", max_length=1000)


class SilenceOut(BaseModel):
    id: int
    name: str
    rules: list[str]
    scope: dict[str, Any]
    starts: datetime
    ends: datetime
    comment: str
    created_by: str | None
    created_at: datetime
    deleted_at: datetime | None


class SilencePage(BaseModel):
    items: list[SilenceOut]
    next_cursor: str | None = None


class NotificationOut(BaseModel):
    id: int
    created_at: datetime
    channel: str
    rule: str
    subject: str
    kind: str
    title: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    error: str | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = None


class TestIn(BaseModel):
    channel: str | None = Field(None, max_length=64, description="Default: every channel")


class TestOut(BaseModel):
    results: dict[str, str | None] = Field(description="channel → null (accepted) or the error")


def _firing(a: FiringAlert) -> FiringOut:
    return FiringOut(
        rule=a.rule,
        subject=a.subject,
        node_id=a.node_id,
        sensor_id=a.sensor_id,
        field=a.field,
        severity=a.severity,
        since=a.since,
        value=a.value,
        last_notified=a.last_notified,
        silenced=a.silenced,
    )


def silence_out(row: SilenceRow) -> SilenceOut:
    return SilenceOut(
        id=row.id,
        name=row.name,
        rules=list(row.rules),
        scope=row.scope,
        starts=from_us(row.starts_us),
        ends=from_us(row.ends_us),
        comment=row.comment,
        created_by=row.created_by,
        created_at=from_us(row.created_us),
        deleted_at=None if row.deleted_us is None else from_us(row.deleted_us),
    )


def _notification(row: NotificationRow) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        created_at=from_us(row.created_us),
        channel=row.channel,
        rule=row.rule,
        subject=row.subject,
        kind=row.kind,
        title=row.title,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=from_us(row.next_attempt_us),
        sent_at=None if row.sent_us is None else from_us(row.sent_us),
        error=row.error,
    )


def _actor(principal: PrincipalDep) -> str:
    return f"{principal.kind}:{principal.name}"


# --- alerts and rules -------------------------------------------------------------------------


@router.get("/api/alerts", response_model=FiringPage, summary="The alerts firing now")
async def list_alerts(alerting: AlertingDep, principal: PrincipalDep) -> FiringPage:
    own = require_reader(principal)
    firing = await alerting.alerts.firing()
    items = [_firing(a) for a in firing if own is None or a.node_id == own]
    return FiringPage(items=items)


@router.get("/api/alert-rules", response_model=RulesOut, summary="The alert rules in force")
async def get_rules(alerting: AlertingDep, principal: PrincipalDep) -> RulesOut:
    if require_reader(principal) is not None:
        require(principal, CredentialScope.READ)
    current = await alerting.alerts.rules_document()
    names = [r.name for r in (await alerting.alerts.ruleset()).rules]
    return RulesOut(document=current["document"], source=current["source"], rules=names)


@router.put(
    "/api/alert-rules",
    response_model=RulesOut,
    summary="Replace the alert rules (the TOML document's shape, as JSON)",
    responses={400: {"description": "invalid_rules: the message names the rule and the key"}},
)
async def put_rules(
    alerting: AlertingDep,
    principal: PrincipalDep,
    document: Annotated[dict[str, Any], Body(description="rules, silences, maintenance")],
) -> RulesOut:
    require(principal, CredentialScope.ADMIN)
    await alerting.alerts.replace_rules(document, _actor(principal))
    names = [r.name for r in (await alerting.alerts.ruleset()).rules]
    return RulesOut(document=document, source="api", rules=names)


# --- silences ---------------------------------------------------------------------------------


@router.get("/api/silences", response_model=SilencePage, summary="Silences not yet ended")
async def list_silences(alerting: AlertingDep, principal: PrincipalDep) -> SilencePage:
    if require_reader(principal) is not None:
        require(principal, CredentialScope.READ)
    return SilencePage(items=[silence_out(r) for r in await alerting.alerts.silences()])


@router.post("/api/silences", response_model=SilenceOut, status_code=201, summary="Silence alerts")
async def add_silence(
    alerting: AlertingDep, principal: PrincipalDep, body: SilenceIn, services: ServicesDep
) -> SilenceOut:
    require(principal, CredentialScope.ADMIN)
    silence = build_silence(body, services.clock.now())
    return silence_out(await alerting.alerts.add_silence(silence, _actor(principal)))


def build_silence(body: SilenceIn, now: datetime) -> Silence:
    """The engine's silence from the request; InvalidRequest when it does not make sense."""
    starts = body.starts or now
    ends = body.ends
    if (ends is None) == (body.duration is None):
        raise InvalidRequest("give exactly one of ends or duration", code="invalid_silence")
    if body.duration is not None:
        try:
            ends = starts + timedelta(seconds=parse_duration(body.duration))
        except ValueError as exc:
            raise InvalidRequest(f"duration: {exc}", code="invalid_silence") from None
    try:
        return Silence(
            name=body.name,
            rules=tuple(body.rules),
            scope=Scope.model_validate(body.scope),
            starts=starts,
            ends=ends,
            comment=body.comment,
        )
    except (ValidationError, ValueError, OverflowError) as exc:
        message = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else None
        if isinstance(exc, ValidationError):
            message = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'silence'}: {e['msg']}"
                for e in exc.errors()
            )
        raise InvalidRequest(message or "invalid silence", code="invalid_silence") from None


@router.delete("/api/silences/{silence_id}", response_model=SilenceOut, summary="End a silence now")
async def delete_silence(
    alerting: AlertingDep,
    principal: PrincipalDep,
    silence_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> SilenceOut:
    require(principal, CredentialScope.ADMIN)
    return silence_out(await alerting.alerts.delete_silence(silence_id, _actor(principal)))


# --- notifications ----------------------------------------------------------------------------


@router.get(
    "/api/notifications", response_model=NotificationPage, summary="Notifications, newest first"
)
async def list_notifications(
    alerting: AlertingDep, principal: PrincipalDep, limit: LimitDep
) -> NotificationPage:
    require(principal, CredentialScope.ADMIN)
    rows = await alerting.alerts.notifications.recent(limit)
    return NotificationPage(items=[_notification(r) for r in rows])


@router.post(
    "/api/notifications/test",
    response_model=TestOut,
    summary="Send a test notification to every channel (or one)",
)
async def send_test(alerting: AlertingDep, principal: PrincipalDep, body: TestIn) -> TestOut:
    require(principal, CredentialScope.ADMIN)
    return TestOut(results=await alerting.alerts.notifications.send_test(body.channel))


# --- Geiger -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A summary as JSON: dataclasses to dicts, times to ISO strings, infinities to null."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def geiger_json(summary: GeigerSummary) -> dict[str, Any]:
    out: dict[str, Any] = _plain(summary)
    return out


@router.get("/api/geiger/summary", summary="A Geiger stream's statistics, CPM, dose and interval")
async def geiger_summary(
    services: ServicesDep,
    principal: PrincipalDep,
    node_id: Annotated[str, Query(min_length=1, max_length=64)],
    sensor_id: Annotated[str, Query(min_length=1, max_length=128)] = "geiger",
    window: Annotated[str, Query(max_length=16, description="e.g. 60s, 5m, 1h")] = "60s",
    tube: Annotated[str | None, Query(max_length=64)] = None,
    confidence: Annotated[float, Query(gt=0, lt=1)] = 0.95,
    dead_time_s: Annotated[float | None, Query(gt=0, lt=0.01)] = None,
    at: AwareDatetime | None = None,
) -> dict[str, Any]:
    node = confine(principal, node_id)
    assert node is not None
    span = timedelta(microseconds=parse_bucket(window))
    return await summarise_geiger(
        services,
        node,
        sensor_id,
        span,
        at or services.clock.now(),
        tube=tube,
        confidence=confidence,
        dead_time_s=dead_time_s,
    )


async def summarise_geiger(
    services: Services,
    node: str,
    sensor_id: str,
    span: timedelta,
    now: datetime,
    *,
    tube: str | None = None,
    confidence: float = 0.95,
    dead_time_s: float | None = None,
) -> dict[str, Any]:
    """``fleet.geiger.summarise`` over the stored readings of one Geiger stream (API and CLI)."""
    window = await geiger_window(
        services.queries,
        node,
        sensor_id,
        span,
        now,
        tube=tube,
        confidence=confidence,
        dead_time_s=dead_time_s,
    )
    return {
        "node_id": node,
        "sensor_id": sensor_id,
        "window_seconds": span.total_seconds(),
        "tube": window.tube,
        **geiger_json(window.summary),
    }
