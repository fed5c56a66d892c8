"""Room: server/api. Per-stream retention: the policy in force and each stream's retention.

| endpoint | credential |
|---|---|
| ``GET /api/retention`` | ``read``; with ``node_id`` and/or ``sensor_id``, those streams too |
| ``PUT /api/retention`` | ``admin``; the policy document as JSON (keys left out keep the settings') |

A policy that does not parse answers ``400 invalid_retention`` whose message names the key
(``overrides[1]: raw_days: Input should be greater than or equal to 0``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel

from beamwarden.protocol import Scope
from beamwarden.server.api.deps import PrincipalDep
from beamwarden.server.services.credentials import require
from beamwarden.server.services.stream_retention import StreamRetentionService, StreamStatus

router = APIRouter(tags=["retention"])


async def get_retention(request: Request) -> StreamRetentionService:
    service: StreamRetentionService = request.app.state.retention
    return service


RetentionDep = Annotated[StreamRetentionService, Depends(get_retention)]


class StreamOut(BaseModel):
    node_id: str
    sensor_id: str
    sensor_type: str
    raw_days: float
    minute_days: float
    hour_days: float
    #: retention forgot this stream's raw readings (minute, hour rollups) before these times
    raw_gone_before: datetime | None
    minute_gone_before: datetime | None
    hour_gone_before: datetime | None


class RetentionOut(BaseModel):
    policy: dict[str, Any]
    source: str
    streams: list[StreamOut] = []


def _stream(s: StreamStatus) -> StreamOut:
    return StreamOut(
        node_id=s.stream.node_id,
        sensor_id=s.stream.sensor_id,
        sensor_type=s.stream.sensor_type,
        raw_days=s.retention.raw_days,
        minute_days=s.retention.minute_days,
        hour_days=s.retention.hour_days,
        raw_gone_before=s.raw_gone_before,
        minute_gone_before=s.minute_gone_before,
        hour_gone_before=s.hour_gone_before,
    )


@router.get("/api/retention", response_model=RetentionOut, summary="The retention policy in force")
async def get_policy(
    retention: RetentionDep,
    principal: PrincipalDep,
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    sensor_id: Annotated[str | None, Query(max_length=128)] = None,
) -> RetentionOut:
    require(principal, Scope.READ)
    policy, source = await retention.current()
    streams = []
    if node_id is not None or sensor_id is not None:
        streams = [_stream(s) for s in await retention.streams(node_id, sensor_id)]
    return RetentionOut(policy=policy.model_dump(mode="json"), source=source, streams=streams)


@router.put(
    "/api/retention",
    response_model=RetentionOut,
    summary="Replace the retention policy (defaults and per-stream overrides)",
    responses={400: {"description": "invalid_retention: the message names the key"}},
)
async def put_policy(
    retention: RetentionDep,
    principal: PrincipalDep,
    document: Annotated[
        dict[str, Any], Body(description="raw_days, minute_days, hour_days, overrides")
    ],
) -> RetentionOut:
    require(principal, Scope.ADMIN)
    policy = await retention.replace(document, f"{principal.kind}:{principal.name}")
    return RetentionOut(policy=policy.model_dump(mode="json"), source="api")
