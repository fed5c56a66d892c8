"""The device registry's adapter (:class:`DeviceSqlStore`) on every store: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from beamwarden.server.device_records import (
    AttributeChange,
    DeviceAttribute,
    DeviceChanges,
    DeviceRow,
    NewDevice,
    SeenDevice,
)
from beamwarden.server.errors import NotFound
from beamwarden.server.services.devices import DeviceStore
from beamwarden.server.store import SqlStore
from beamwarden.server.store.devices import DeviceSqlStore

T0 = 1_800_000_000_000_000
KITCHEN = "ble:A4C138123456"
CELLAR = "ble:A4C138ABCDEF"


@pytest.fixture
def devices(store: SqlStore) -> DeviceSqlStore:
    return DeviceSqlStore(store.engine, query_timeout=10.0)


def test_the_adapter_satisfies_the_port(devices: DeviceSqlStore) -> None:
    port: DeviceStore = devices
    assert port is devices


async def test_a_device_heard_first_is_created_unclaimed_once(devices: DeviceSqlStore) -> None:
    seen = SeenDevice(KITCHEN, T0, "omg-kitchen", "govee:1F80A4C138123456", "H5075")
    assert await devices.add_seen([seen, seen]) == [KITCHEN]
    assert await devices.add_seen([seen]) == []
    assert await devices.get_device(KITCHEN) == DeviceRow(
        device_id=KITCHEN,
        created_us=T0,
        updated_us=T0,
        vendor_id="govee:1F80A4C138123456",
        model="H5075",
        claimed=False,
        last_seen_us=T0,
        last_source="omg-kitchen",
    )


async def test_a_vendor_id_finds_the_device(devices: DeviceSqlStore) -> None:
    await devices.add_seen([SeenDevice(KITCHEN, T0, "govee2mqtt", "govee:1F80A4C138123456")])
    row = await devices.get_device("govee:1F80A4C138123456")
    assert row is not None
    assert row.device_id == KITCHEN
    assert await devices.get_device("ble:000000000000") is None


async def test_a_sighting_fills_what_is_missing_and_never_touches_operator_fields(
    devices: DeviceSqlStore,
) -> None:
    await devices.add_seen([SeenDevice(KITCHEN, T0, "omg-kitchen")])
    await devices.change(KITCHEN, DeviceChanges(name="Kitchen", claimed=True), "cli", T0 + 1)
    await devices.add_seen([SeenDevice(KITCHEN, T0 + 2, "gv", "govee:1F80A4C138123456", "H5075")])
    row = await devices.get_device(KITCHEN)
    assert row is not None
    assert (row.name, row.claimed, row.vendor_id, row.model) == (
        "Kitchen",
        True,
        "govee:1F80A4C138123456",
        "H5075",
    )


async def test_touch_keeps_the_latest_sighting(devices: DeviceSqlStore) -> None:
    await devices.add_seen([SeenDevice(KITCHEN, T0, "a"), SeenDevice(CELLAR, T0, "a")])
    await devices.touch([(KITCHEN, T0 + 50, "b"), (CELLAR, T0 + 10, "c")])
    await devices.touch([(KITCHEN, T0 + 20, "late")])  # an older sighting does not go back
    kitchen, cellar = await devices.get_device(KITCHEN), await devices.get_device(CELLAR)
    assert kitchen is not None
    assert (kitchen.last_seen_us, kitchen.last_source) == (T0 + 50, "b")
    assert cellar is not None
    assert (cellar.last_seen_us, cellar.last_source) == (T0 + 10, "c")


async def test_changes_are_kept_as_history_with_before_and_actor(devices: DeviceSqlStore) -> None:
    await devices.add_seen([SeenDevice(KITCHEN, T0, "omg")])
    row, done = await devices.change(
        KITCHEN, DeviceChanges(name="Kitchen", room="kitchen", claimed=True), "user:ops", T0 + 1
    )
    assert (row.name, row.room, row.site, row.claimed, row.updated_us) == (
        "Kitchen",
        "kitchen",
        None,
        True,
        T0 + 1,
    )
    assert [c.attribute for c in done] == [
        DeviceAttribute.NAME,
        DeviceAttribute.ROOM,
        DeviceAttribute.CLAIMED,
    ]
    # the same values again change nothing and write no history
    _, again = await devices.change(KITCHEN, DeviceChanges(name="Kitchen"), "user:ops", T0 + 2)
    assert again == []
    await devices.change(KITCHEN, DeviceChanges(name="Kitchen 2", room=""), "cli", T0 + 3)
    assert await devices.history(KITCHEN) == [
        AttributeChange(KITCHEN, DeviceAttribute.NAME, "Kitchen", None, T0 + 1, "user:ops"),
        AttributeChange(KITCHEN, DeviceAttribute.ROOM, "kitchen", None, T0 + 1, "user:ops"),
        AttributeChange(KITCHEN, DeviceAttribute.CLAIMED, "true", "false", T0 + 1, "user:ops"),
        AttributeChange(KITCHEN, DeviceAttribute.NAME, "Kitchen 2", "Kitchen", T0 + 3, "cli"),
        AttributeChange(KITCHEN, DeviceAttribute.ROOM, None, "kitchen", T0 + 3, "cli"),
    ]
    final = await devices.get_device(KITCHEN)
    assert final is not None
    assert final.room is None


async def test_change_of_an_unknown_device_is_not_found_unless_created(
    devices: DeviceSqlStore,
) -> None:
    with pytest.raises(NotFound):
        await devices.change(CELLAR, DeviceChanges(name="x"), "cli", T0)
    row, done = await devices.change(
        CELLAR,
        DeviceChanges(name="Cellar", claimed=True),
        "import",
        T0,
        create=NewDevice(CELLAR, model="H5179"),
    )
    assert (row.name, row.claimed, row.model, row.last_seen_us) == ("Cellar", True, "H5179", None)
    assert len(done) == 2


async def test_list_is_ordered_paged_and_filtered(devices: DeviceSqlStore) -> None:
    ids = [f"ble:A4C13800000{i}" for i in range(5)]
    await devices.add_seen([SeenDevice(d, T0, "omg") for d in reversed(ids)])
    await devices.change(ids[1], DeviceChanges(claimed=True), "cli", T0 + 1)
    page = await devices.list_devices(2, None)
    assert [r.device_id for r in page] == ids[:2]
    assert [r.device_id for r in await devices.list_devices(10, ids[1])] == ids[2:]
    assert [r.device_id for r in await devices.list_devices(10, None, claimed=True)] == [ids[1]]
    assert len(await devices.list_devices(10, None, claimed=False)) == 4
    assert await devices.count_devices() == 5


async def test_concurrent_sightings_of_a_new_device_create_it_once(
    devices: DeviceSqlStore,
) -> None:
    seen = SeenDevice(KITCHEN, T0, "omg")
    results = await asyncio.gather(*(devices.add_seen([seen]) for _ in range(4)))
    assert sum(len(r) for r in results) >= 1
    assert await devices.count_devices() == 1
