"""Room: server/api. Devices: the registry of physical sensors heard fleet-wide (``ble:<MAC>``).

``GET /api/devices`` (``?claimed=true|false``, cursor) and ``GET /api/devices/{device_id}`` need a
user token with the ``read`` scope; ``PATCH /api/devices/{device_id}`` (rename, room, site, claim)
needs ``admin``. ``{device_id}`` is the device id, its vendor id, or any spelling of its MAC. A
device's series is ``/api/series?sensor_id=<device_id>&field=…``: a rename changes the name shown,
never the series. The service is ``Services.devices``
(:class:`~beamwarden.server.services.devices.DeviceService`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from beamwarden.protocol import Page, Scope
from beamwarden.server.api.deps import CursorQuery, LimitDep, PrincipalDep, ServicesDep
from beamwarden.server.device_records import AttributeChange, DeviceChanges, DeviceRow
from beamwarden.server.errors import Forbidden, StoreUnavailable
from beamwarden.server.records import Principal, from_us
from beamwarden.server.services.container import Services
from beamwarden.server.services.devices import MAX_ATTRIBUTE, DeviceService, DeviceView
from beamwarden.server.services.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["devices"])

DEVICE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
DeviceKey = Annotated[
    str,
    Path(
        pattern=DEVICE_KEY_PATTERN,
        max_length=128,
        description="The device id (ble:A4C138123456), its vendor id, or its MAC",
    ),
]


class DeviceChangeRecord(BaseModel):
    """One entry of a device's history."""

    attribute: str
    value: str | None
    previous: str | None
    at: datetime
    actor: str | None = None


class DeviceRecord(BaseModel):
    """A device: its stable id, what an operator set, when and by which gateway it was heard."""

    device_id: str = Field(description="The fleet-wide sensor id; its series' key")
    vendor_id: str | None = None
    model: str | None = None
    name: str | None = None
    room: str | None = None
    site: str | None = None
    claimed: bool = Field(description="False until an operator claims it (data is kept anyway)")
    created_at: datetime
    updated_at: datetime
    last_seen: datetime | None = None
    last_source: str | None = Field(None, description="The gateway that heard it last")
    history: list[DeviceChangeRecord] | None = Field(
        None, description="Name, room, site and claim changes, oldest first (one device only)"
    )


class DevicePatch(BaseModel):
    """What to change; a field left out stays as it is, ``""`` clears a text field."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=MAX_ATTRIBUTE)
    room: str | None = Field(None, max_length=MAX_ATTRIBUTE)
    site: str | None = Field(None, max_length=MAX_ATTRIBUTE)
    claimed: bool | None = None


def device_record(row: DeviceRow, history: list[AttributeChange] | None = None) -> DeviceRecord:
    return DeviceRecord(
        device_id=row.device_id,
        vendor_id=row.vendor_id,
        model=row.model,
        name=row.name,
        room=row.room,
        site=row.site,
        claimed=row.claimed,
        created_at=from_us(row.created_us),
        updated_at=from_us(row.updated_us),
        last_seen=None if row.last_seen_us is None else from_us(row.last_seen_us),
        last_source=row.last_source,
        history=None
        if history is None
        else [
            DeviceChangeRecord(
                attribute=c.attribute.value,
                value=c.value,
                previous=c.previous,
                at=from_us(c.since_us),
                actor=c.actor,
            )
            for c in history
        ],
    )


def _view(view: DeviceView) -> DeviceRecord:
    return device_record(view.row, view.history)


def registry(services: Services) -> DeviceService:
    if services.devices is None:
        raise StoreUnavailable("the device registry is not available on this server")
    return services.devices


def _reader(principal: Principal) -> None:
    if not principal.has(Scope.READ):
        raise Forbidden("reading devices needs a token with the 'read' scope")


@router.get("/api/devices", response_model=Page[DeviceRecord], summary="Devices, by device id")
async def list_devices(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: LimitDep,
    cursor: CursorQuery = None,
    claimed: Annotated[
        bool | None, Query(description="Only claimed (true) or unclaimed (false) devices")
    ] = None,
) -> Page[DeviceRecord]:
    _reader(principal)
    after = decode_cursor("devices", cursor, (str,))[0] if cursor else None
    rows = await registry(services).list_devices(limit + 1, after, claimed)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[DeviceRecord](
        items=[device_record(r) for r in rows],
        next_cursor=encode_cursor("devices", [rows[-1].device_id]) if more else None,
    )


@router.get(
    "/api/devices/{device_id}", response_model=DeviceRecord, summary="One device with its history"
)
async def get_device(
    device_id: DeviceKey, services: ServicesDep, principal: PrincipalDep
) -> DeviceRecord:
    _reader(principal)
    return _view(await registry(services).get(device_id))


@router.patch(
    "/api/devices/{device_id}",
    response_model=DeviceRecord,
    summary="Rename, move or claim a device (admin)",
)
async def patch_device(
    device_id: DeviceKey, patch: DevicePatch, services: ServicesDep, principal: PrincipalDep
) -> DeviceRecord:
    if not principal.has(Scope.ADMIN):
        raise Forbidden("changing a device needs a token with the 'admin' scope")
    changes = DeviceChanges(
        name=patch.name, room=patch.room, site=patch.site, claimed=patch.claimed
    )
    actor = f"{principal.kind}:{principal.name}"
    return _view(await registry(services).edit(device_id, changes, actor))
