"""Room: server/api. ``GET /api/series``: one numeric series, bucketed.

A page holds up to ``series_max_buckets`` buckets (default 10 000: a day in minutes is one
request), and the answer is encoded straight from the rows: a pydantic model per bucket cost more
than the query on a 1440-bucket day (bench/bench_series_query.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from beamwarden.protocol import Page, SeriesBucket
from beamwarden.server.api.deps import CursorQuery, PrincipalDep, ServicesDep, SettingsDep
from beamwarden.server.api.readings import confine
from beamwarden.server.records import from_us

router = APIRouter(tags=["readings"])


@router.get(
    "/api/series",
    response_class=Response,
    responses={200: {"model": Page[SeriesBucket], "description": "Buckets, oldest first"}},
    summary="One numeric field of one sensor in time buckets (default: the last 24 h)",
)
async def get_series(
    services: ServicesDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    sensor_id: Annotated[str, Query(min_length=1, max_length=128)],
    field: Annotated[str, Query(min_length=1, max_length=64)],
    node_id: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    bucket: Annotated[str, Query(max_length=16, description="60s, 5m, 1h, 1d …")] = "60s",
    agg: Annotated[
        str, Query(max_length=64, description="avg,min,max,count,sum")
    ] = "avg,min,max,count",
    limit: Annotated[
        int | None, Query(ge=1, description="Buckets per page (default and cap: 10 000)")
    ] = None,
    cursor: CursorQuery = None,
) -> Response:
    page = await services.queries.series(
        node_id=confine(principal, node_id),
        sensor_id=sensor_id,
        field=field,
        since=since,
        until=until,
        bucket=bucket,
        agg=agg,
        limit=limit or settings.series_max_buckets,
        cursor=cursor,
    )
    items: list[dict[str, Any]] = []
    for row in page.items:
        item: dict[str, Any] = {"t": from_us(row.bucket_us)}
        item.update((k, v) for k, v in row.values.items() if v is not None)
        items.append(item)
    return Response(
        # orjson writes the datetimes itself (ISO 8601, "Z"): 1440 isoformat() calls cost more
        orjson.dumps({"items": items, "next_cursor": page.next_cursor}, option=orjson.OPT_UTC_Z),
        media_type="application/json",
    )
