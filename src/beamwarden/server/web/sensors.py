"""Room: server/web. The fleet's sensors, grouped by type: the Geiger view (CPS, CPM and µSv/h over
the chosen window with the rate's exact Garwood interval, from ``services.geiger``), climate
sensors with their newest values and charts, and every other sensor type with its newest values.

A fleet-wide device (``ble:…``) shows the name and room the device registry gives it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from beamwarden.fleet.geiger import GeigerSummary
from beamwarden.server.device_records import DeviceRow
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.services.container import Services
from beamwarden.server.services.geiger import geiger_window

from .charts import DEFAULT_RANGE, RANGES
from .rendering import WebRoute, render
from .security import ViewerDep, services_of
from .sensor_cards import SensorCard, devices_by_id, sensor_card

router = APIRouter(route_class=WebRoute, include_in_schema=False)

#: the Geiger summary windows offered (value, label). The summary reads every reading of the
#: window (``services.geiger``): an hour of a 1 Hz counter takes ~70 ms, a day ~3 s — too slow for
#: a page that summarises every counter, so a day is left to the charts (and the API).
WINDOWS = (("60s", "1 min"), ("10m", "10 min"), ("1h", "1 h"))
WINDOW_SPANS = {
    "60s": timedelta(minutes=1),
    "10m": timedelta(minutes=10),
    "1h": timedelta(hours=1),
}
DEFAULT_WINDOW = "10m"
CONFIDENCE = 0.95
#: the most sensors listed, and Geiger streams summarised, on one page
MAX_SENSORS = 2000
MAX_GEIGER = 20
_DEVICES_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class GeigerCard:
    card: SensorCard
    summary: GeigerSummary | None
    tube: str | None


async def registry_devices(services: Services) -> dict[str, DeviceRow]:
    if services.devices is None:
        return {}
    rows: list[DeviceRow] = []
    after: str | None = None
    while len(rows) < MAX_SENSORS:
        chunk = await services.devices.list_devices(_DEVICES_CHUNK, after)
        rows.extend(chunk)
        if len(chunk) < _DEVICES_CHUNK:
            break
        after = chunk[-1].device_id
    return devices_by_id(rows)


@router.get("/sensors")
async def sensors_page(
    request: Request,
    viewer: ViewerDep,
    window: Annotated[str, Query(max_length=8)] = DEFAULT_WINDOW,
) -> Response:
    if window not in WINDOW_SPANS:
        raise InvalidRequest("window is one of " + ", ".join(WINDOW_SPANS), code="invalid_window")
    services = services_of(request)
    now = services.clock.now()
    devices = await registry_devices(services)
    cards = [
        sensor_card(s, now, devices) for s in await services.queries.sensors(None, MAX_SENSORS)
    ]
    geiger: list[GeigerCard] = []
    climate: list[SensorCard] = []
    others: dict[str, list[SensorCard]] = defaultdict(list)
    for card in cards:
        if card.is_geiger:
            summary, tube = None, None
            if card.sensor.owner and len(geiger) < MAX_GEIGER:
                found = await geiger_window(
                    services.queries,
                    card.sensor.owner,
                    card.sensor.sensor_id,
                    WINDOW_SPANS[window],
                    now,
                    confidence=CONFIDENCE,
                )
                summary, tube = found.summary, found.tube
            geiger.append(GeigerCard(card, summary, tube))
        elif card.is_climate:
            climate.append(card)
        else:
            others[card.sensor.sensor_type].append(card)
    return render(
        request,
        "sensors.html",
        {
            "geiger": geiger,
            "climate": climate,
            "others": sorted(others.items()),
            "total": len(cards),
            "window": window,
            "windows": WINDOWS,
            "confidence": CONFIDENCE,
            "ranges": RANGES,
            "default_range": DEFAULT_RANGE,
        },
        viewer=viewer,
    )
