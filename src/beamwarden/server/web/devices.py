"""Room: server/web. The device registry page: rename, move, claim; each device's history.

``GET /devices`` lists devices by id (``?claimed=yes|no``, ``?after=<id>`` pages on); an admin
edits a row in place (``POST /devices/{device_id}``: name, room, site, ``claimed``) and the
change applies at once: a device's name is looked up when data is shown, never written into
readings, so its series (keyed by the device id) stays one. ``GET /devices/{device_id}`` shows one
device and its history of changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from beamwarden.server.device_records import DeviceChanges
from beamwarden.server.errors import InvalidRequest, NotFound, StoreUnavailable
from beamwarden.server.records import from_us
from beamwarden.server.services.devices import MAX_ATTRIBUTE, DeviceService

from .forms import actor, page, redirect, text_field
from .rendering import WebRoute
from .security import CheckedAdminDep, ViewerDep, services_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PAGE_SIZE = 50
#: a device key in a path: what the registry may know (longer or odder is no device)
MAX_KEY = 128
CLAIMED = {"yes": True, "no": False, "": None}


def registry(request: Request) -> DeviceService:
    devices = services_of(request).devices
    if devices is None:
        raise StoreUnavailable("the device registry is not available on this server")
    return devices


def _key(device_id: str) -> str:
    if not device_id or len(device_id) > MAX_KEY or not device_id.isprintable():
        raise NotFound("no such device", code="unknown_device")
    return device_id


def _age(request: Request, us: int | None) -> float | None:
    if us is None:
        return None
    return (services_of(request).clock.now() - from_us(us)).total_seconds()


def _link(claimed: str, after: str | None) -> str:
    parts = [f"claimed={claimed}"] if claimed else []
    if after:
        parts.append(f"after={after}")
    return "/devices" + ("?" + "&".join(parts) if parts else "")


Text = Annotated[str, Query(max_length=200)]


@router.get("/devices")
async def devices_page(
    request: Request, viewer: ViewerDep, claimed: Text = "", after: Text = ""
) -> Response:
    if claimed not in CLAIMED:
        raise InvalidRequest("claimed is yes, no or empty", code="invalid_filter")
    rows = await registry(request).list_devices(PAGE_SIZE + 1, after or None, CLAIMED[claimed])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    here = _link(claimed, after)
    return page(
        request,
        "devices.html",
        {
            "rows": rows,
            "claimed": claimed,
            "after": after,
            "here": here,
            "first": _link(claimed, None) if after else None,
            "next": _link(claimed, rows[-1].device_id) if more else None,
            "age": lambda us: _age(request, us),
            "from_us": from_us,
            "max_attribute": MAX_ATTRIBUTE,
        },
        viewer,
    )


@router.get("/devices/{device_id}")
async def device_page(request: Request, viewer: ViewerDep, device_id: str) -> Response:
    view = await registry(request).get(_key(device_id))
    return page(
        request,
        "device.html",
        {
            "device": view.row,
            "history": list(reversed(view.history)),
            "here": f"/devices/{view.row.device_id}",
            "age": lambda us: _age(request, us),
            "from_us": from_us,
            "max_attribute": MAX_ATTRIBUTE,
        },
        viewer,
    )


FormText = Annotated[str | None, Form()]


@router.post("/devices/{device_id}")
async def edit_device(
    request: Request,
    viewer: CheckedAdminDep,
    device_id: str,
    name: FormText = None,
    room: FormText = None,
    site: FormText = None,
    claimed: FormText = None,
    back: FormText = None,
) -> Response:
    """Rename, move, claim or unclaim: a field left out stays as it is, an empty one clears."""
    if claimed not in (None, "", "true", "false"):
        raise InvalidRequest("claimed is true or false", code="invalid_form")
    changes = DeviceChanges(
        name=text_field(name, "the name", MAX_ATTRIBUTE),
        room=text_field(room, "the room", MAX_ATTRIBUTE),
        site=text_field(site, "the site", MAX_ATTRIBUTE),
        claimed=None if not claimed else claimed == "true",
    )
    devices = registry(request)
    before = (await devices.get(_key(device_id))).row
    view = await devices.edit(before.device_id, changes, actor(viewer))
    changed = [
        a for a in ("name", "room", "site", "claimed") if getattr(before, a) != getattr(view.row, a)
    ]
    label = view.row.name or view.row.device_id
    message = f"{label}: {', '.join(changed)} saved" if changed else f"{label}: nothing changed"
    return redirect(request, back or "/devices", message)
