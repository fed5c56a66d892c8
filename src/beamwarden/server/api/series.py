"""Room: server/api. ``GET /api/series``: one numeric series, bucketed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from beamwarden.protocol import Page, SeriesBucket
from beamwarden.server.api.deps import CursorQuery, LimitDep, PrincipalDep, ServicesDep
from beamwarden.server.api.readings import confine
from beamwarden.server.api.views import series_bucket

router = APIRouter(tags=["readings"])


@router.get(
    "/api/series",
    response_model=Page[SeriesBucket],
    response_model_exclude_none=True,
    summary="One numeric field of one sensor in time buckets (default: the last 24 h)",
)
async def get_series(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: LimitDep,
    sensor_id: Annotated[str, Query(min_length=1, max_length=128)],
    field: Annotated[str, Query(min_length=1, max_length=64)],
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    bucket: Annotated[str, Query(max_length=16, description="60s, 5m, 1h, 1d …")] = "60s",
    agg: Annotated[
        str, Query(max_length=64, description="avg,min,max,count,sum")
    ] = "avg,min,max,count",
    cursor: CursorQuery = None,
) -> Page[SeriesBucket]:
    page = await services.queries.series(
        node_id=confine(principal, node_id),
        sensor_id=sensor_id,
        field=field,
        since=since,
        until=until,
        bucket=bucket,
        agg=agg,
        limit=limit,
        cursor=cursor,
    )
    return Page[SeriesBucket](
        items=[series_bucket(r) for r in page.items], next_cursor=page.next_cursor
    )
