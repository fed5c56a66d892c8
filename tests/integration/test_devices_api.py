"""``/api/devices`` through the ASGI app, on SQLite and PostgreSQL: reads need ``read``, edits
``admin``; unknown devices are listed unclaimed; edits are kept as history."""

from __future__ import annotations

from typing import Any

import pytest

from beamwarden.protocol import Scope
from beamwarden.server.device_records import SeenDevice
from beamwarden.server.records import to_us
from beamwarden.server.services.devices import DeviceService, parse_device_list
from tests.conftest import Server, auth

KITCHEN = "ble:A4C138123456"


def registry(server: Server) -> DeviceService:
    devices = server.services.devices
    assert devices is not None
    return devices


async def heard(server: Server, *device_ids: str, source: str = "omg-kitchen") -> None:
    await registry(server).observe(
        [SeenDevice(d, to_us(server.clock.now()), source) for d in device_ids]
    )
    await registry(server).flush_seen()


async def test_devices_need_read_and_edits_need_admin(server: Server) -> None:
    await heard(server, KITCHEN)
    node = await server.node()
    reader = await server.user(Scope.READ)
    for path in ("/api/devices", f"/api/devices/{KITCHEN}"):
        assert (await server.client.get(path)).status_code == 401
        r = await server.client.get(path, headers=auth(node))
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"
        assert (await server.client.get(path, headers=auth(reader))).status_code == 200
    r = await server.client.patch(
        f"/api/devices/{KITCHEN}", json={"name": "Kitchen"}, headers=auth(reader)
    )
    assert r.status_code == 403


async def test_an_unknown_device_is_listed_unclaimed(server: Server) -> None:
    await heard(server, KITCHEN)
    reader = await server.user(Scope.READ)
    r = await server.client.get("/api/devices", headers=auth(reader))
    assert r.json() == {
        "items": [
            {
                "device_id": KITCHEN,
                "vendor_id": None,
                "model": None,
                "name": None,
                "room": None,
                "site": None,
                "claimed": False,
                "created_at": "2026-11-22T12:00:00Z",
                "updated_at": "2026-11-22T12:00:00Z",
                "last_seen": "2026-11-22T12:00:00Z",
                "last_source": "omg-kitchen",
                "history": None,
            }
        ],
        "next_cursor": None,
    }
    claimed = await server.client.get("/api/devices?claimed=true", headers=auth(reader))
    assert claimed.json()["items"] == []


async def test_rename_claim_and_history(server: Server) -> None:
    await heard(server, KITCHEN)
    admin = await server.user(Scope.ADMIN)
    server.clock.advance(60)
    r = await server.client.patch(
        f"/api/devices/{KITCHEN}",
        json={"name": "Kitchen", "room": "kitchen", "site": "lab", "claimed": True},
        headers=auth(admin),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["room"], body["site"], body["claimed"]) == (
        "Kitchen",
        "kitchen",
        "lab",
        True,
    )
    server.clock.advance(60)
    # any spelling of the MAC names the device
    r = await server.client.patch(
        "/api/devices/a4:c1:38:12:34:56", json={"name": "Fridge"}, headers=auth(admin)
    )
    assert r.status_code == 200, r.text
    history = r.json()["history"]
    assert [(h["attribute"], h["previous"], h["value"], h["at"]) for h in history] == [
        ("name", None, "Kitchen", "2026-11-22T12:01:00Z"),
        ("room", None, "kitchen", "2026-11-22T12:01:00Z"),
        ("site", None, "lab", "2026-11-22T12:01:00Z"),
        ("claimed", "false", "true", "2026-11-22T12:01:00Z"),
        ("name", "Kitchen", "Fridge", "2026-11-22T12:02:00Z"),
    ]
    assert {h["actor"] for h in history} == {"user:test-admin"}
    events = await server.client.get("/api/events?kind=device_changed", headers=auth(admin))
    assert len(events.json()["items"]) == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_device_change"),
        ({"name": "x" * 129}, "invalid_request"),
        ({"colour": "red"}, "invalid_request"),
        ({"claimed": "maybe"}, "invalid_request"),
    ],
)
async def test_bad_edits_are_400(server: Server, body: dict[str, Any], code: str) -> None:
    await heard(server, KITCHEN)
    admin = await server.user(Scope.ADMIN)
    r = await server.client.patch(f"/api/devices/{KITCHEN}", json=body, headers=auth(admin))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in (code, "schema_violation", "invalid_request")


async def test_an_unknown_device_is_404(server: Server) -> None:
    admin = await server.user(Scope.ADMIN)
    for method in ("GET", "PATCH"):
        r = await server.client.request(
            method, "/api/devices/ble:000000000001", json={"name": "x"}, headers=auth(admin)
        )
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "unknown_device"


async def test_the_list_pages_with_a_cursor(server: Server) -> None:
    ids = [f"ble:A4C13800000{i}" for i in range(5)]
    await heard(server, *ids)
    reader = await server.user(Scope.READ)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/devices?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await server.client.get(url, headers=auth(reader))).json()
        seen += [d["device_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    r = await server.client.get("/api/devices?cursor=" + "x" * 10, headers=auth(reader))
    assert r.status_code == 400


async def test_an_import_adds_and_updates_and_never_removes(server: Server) -> None:
    await heard(server, KITCHEN, "ble:A4C1380000AA")
    devices = registry(server)
    entries = parse_device_list(
        b'[{"id": "1F:80:A4:C1:38:12:34:56", "name": "Kitchen", "sku": "H5075", "room": "k"},'
        b' {"device": "A4:C1:38:00:00:BB", "deviceName": "Cellar"}]',
        "json",
    )
    outcome = await devices.import_entries(entries, "cli")
    assert (outcome.created, outcome.updated, outcome.unchanged) == (1, 1, 0)
    again = await devices.import_entries(entries[:1], "cli")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    reader = await server.user(Scope.READ)
    items = (await server.client.get("/api/devices", headers=auth(reader))).json()["items"]
    by_id = {d["device_id"]: d for d in items}
    assert set(by_id) == {KITCHEN, "ble:A4C1380000AA", "ble:A4C1380000BB"}
    assert (by_id[KITCHEN]["name"], by_id[KITCHEN]["vendor_id"], by_id[KITCHEN]["model"]) == (
        "Kitchen",
        "govee:1F80A4C138123456",
        "H5075",
    )
    assert by_id["ble:A4C1380000AA"]["claimed"] is False  # not in the list: kept as it was
