"""The MQTT bridge inside the server, against the real Mosquitto on 127.0.0.1:1883.

Each test has a topic prefix of its own (``bwtest-<random>/``, stripped by the bridge through
``bridge_topic_prefix``), so tests never see each other's messages; retained messages a test
leaves on the broker are cleared at its end. Readings are read back through the HTTP API.
Under ``CI=true`` a missing broker fails the tests instead of skipping them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from beamwarden.protocol import Scope
from beamwarden.server.bridge import MqttBridge
from tests.conftest import IN_CI, START, Server, auth

BROKER = ("127.0.0.1", 1883)
KITCHEN = "ble:A4C138123456"
#: a Govee H5075 advertisement: -5.3 °C, 45.2 %RH, battery 87 % (docs/sensors.md)
H5075_RAW = "88ec0080d0cc5700"
WAIT_S = 15.0


async def _broker_up() -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*BROKER), 3)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    if not await _broker_up():
        message = f"Mosquitto is not reachable at {BROKER[0]}:{BROKER[1]}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: tests that need it fail rather than skip)")
        pytest.skip(message)
    value = f"bwtest-{secrets.token_hex(4)}"
    yield value
    # clear what the test retained (an empty retained message deletes it)
    async with aiomqtt.Client(*BROKER, identifier=f"{value}-cleanup") as client:
        for topic in RETAINED.pop(value, set()):
            await client.publish(topic, b"", qos=1, retain=True)


RETAINED: dict[str, set[str]] = {}


@pytest.fixture
def settings_overrides(prefix: str) -> dict[str, Any]:
    return {
        "bridge_mqtt_url": f"mqtt://{BROKER[0]}:{BROKER[1]}",
        "bridge_topics": [f"{prefix}/#"],
        "bridge_topic_prefix": f"{prefix}/",
    }


async def publish(prefix: str, messages: list[tuple[str, Any]], *, retain: bool = False) -> None:
    """Publish ``(topic, payload)`` pairs under the prefix (payload: dict → JSON, str → text)."""
    async with aiomqtt.Client(*BROKER, identifier=f"{prefix}-pub-{secrets.token_hex(2)}") as c:
        for topic, payload in messages:
            body = json.dumps(payload) if isinstance(payload, dict) else str(payload)
            full = f"{prefix}/{topic}"
            await c.publish(full, body.encode(), qos=1, retain=retain)
            if retain:
                RETAINED.setdefault(prefix, set()).add(full)


def bridge(server: Server) -> MqttBridge:
    running: MqttBridge | None = server.app.state.bridge
    assert running is not None
    return running


async def subscribed(server: Server) -> None:
    await asyncio.wait_for(bridge(server).subscribed.wait(), WAIT_S)


async def readings(server: Server, token: str, sensor_id: str, n: int) -> list[dict[str, Any]]:
    """The sensor's readings once there are at least ``n`` (waits for the bridge, not for time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        r = await server.client.get(
            f"/api/readings?sensor_id={sensor_id}&limit=1000", headers=auth(token)
        )
        items: list[dict[str, Any]] = r.json()["items"]
        if len(items) >= n or loop.time() > deadline:
            return items
        await asyncio.sleep(0.05)


async def settled(server: Server) -> None:
    """Everything the bridge has buffered is stored."""
    await bridge(server).relay.flush()


#: published after what a test checks: once its reading is stored, everything before it was read
MARKER_ID = "ble:A4C1380000FF"
MARKER = ("home/marker/BTtoMQTT/A4C1380000FF", {"id": "A4:C1:38:00:00:FF", "tempc": 0.5})


def omg(temp: float, *, rssi: int = -70, mac: str = "A4:C1:38:12:34:56") -> dict[str, Any]:
    return {"id": mac, "name": "GVH5075_3456", "rssi": rssi, "tempc": temp, "hum": 44.2, "batt": 90}


async def test_gateway_messages_are_ingested_and_read_back_through_the_api(
    server: Server, prefix: str
) -> None:
    await subscribed(server)
    reader = await server.user(Scope.READ)
    await publish(
        prefix,
        [
            ("home/OMG_ESP32_BLE/BTtoMQTT/A4C138123456", omg(21.3)),
            ("gv2mqtt/sensor/sensor-1F80A4C138ABCDEF-sensortemperature/state", "19.25"),
            ("gv2mqtt/sensor/sensor-1F80A4C138ABCDEF-sensorhumidity/state", "51.5"),
            ("home/OMG_ESP32_BLE/BTtoMQTT/5CF938010203", {"id": "5C:F9:38:01:02:03", "rssi": -60}),
            ("somebody/else", "not for us"),
        ],
    )
    got = await readings(server, reader, KITCHEN, 1)
    assert [
        {k: r[k] for k in ("node_id", "sensor_id", "sensor_type", "payload", "timestamp", "source")}
        for r in got
    ] == [
        {
            "node_id": "mqtt-bridge",
            "sensor_id": KITCHEN,
            "sensor_type": "climate",
            "payload": {
                "temperature_c": 21.3,
                "humidity_pct": 44.2,
                "battery_pct": 90.0,
                "rssi_dbm": -70,
            },
            "timestamp": START.isoformat().replace("+00:00", "Z"),
            "source": "omg_esp32_ble",
        }
    ]
    cloud = await readings(server, reader, "ble:A4C138ABCDEF", 2)
    assert sorted(tuple(r["payload"].items()) for r in cloud) == [
        (("humidity_pct", 51.5),),
        (("temperature_c", 19.25),),
    ]
    assert {r["source"] for r in cloud} == {"govee2mqtt"}
    # the devices heard are in the registry, unclaimed, with the vendor id govee2mqtt gave
    devices = (await server.client.get("/api/devices", headers=auth(reader))).json()["items"]
    by_id = {d["device_id"]: d for d in devices}
    assert set(by_id) == {KITCHEN, "ble:A4C138ABCDEF"}
    assert by_id["ble:A4C138ABCDEF"]["vendor_id"] == "govee:1F80A4C138ABCDEF"
    assert not any(d["claimed"] for d in devices)
    stats = bridge(server).relay.stats
    assert (stats.readings, stats.ignored) == (3, 2)  # a phone, and a topic not ours


async def test_a_rename_mid_stream_keeps_one_continuous_series(server: Server, prefix: str) -> None:
    await subscribed(server)
    admin = await server.user(Scope.ADMIN)
    topic = "home/omg1/BTtoMQTT/A4C138123456"
    for i in range(3):
        await publish(prefix, [(topic, omg(20.0 + i))])
        await readings(server, admin, KITCHEN, i + 1)
        server.clock.advance(30)
    r = await server.client.patch(
        f"/api/devices/{KITCHEN}", json={"name": "Fridge", "claimed": True}, headers=auth(admin)
    )
    assert r.status_code == 200
    for i in range(3, 6):
        await publish(prefix, [(topic, omg(20.0 + i))])
        await readings(server, admin, KITCHEN, i + 1)
        server.clock.advance(30)
    since = START.isoformat().replace("+00:00", "Z")
    series = await server.client.get(
        f"/api/series?sensor_id={KITCHEN}&field=temperature_c&since={since}"
        "&until=2026-11-22T13:00:00Z&bucket=3600s&agg=count,min,max",
        headers=auth(admin),
    )
    assert series.status_code == 200, series.text
    buckets = series.json()["items"]
    assert len(buckets) == 1
    assert {k: buckets[0][k] for k in ("count", "min", "max")} == {
        "count": 6,
        "min": 20.0,
        "max": 25.0,
    }
    device = (await server.client.get(f"/api/devices/{KITCHEN}", headers=auth(admin))).json()
    assert device["name"] == "Fridge"
    assert [h["attribute"] for h in device["history"]] == ["name", "claimed"]


async def test_retained_messages_are_never_stored_again_when_the_bridge_restarts(
    server: Server, prefix: str
) -> None:
    await subscribed(server)
    reader = await server.user(Scope.READ)
    topic = "home/omg1/BTtoMQTT/A4C138123456"
    # a gateway publishing with retain: live subscribers get it once, the broker keeps it
    await publish(
        prefix,
        [
            (topic, omg(18.0)),
            ("gv2mqtt/sensor/sensor-1F80A4C138123456-sensortemperature/state", "18.5"),
        ],
        retain=True,
    )
    assert len(await readings(server, reader, KITCHEN, 2)) == 2
    # restart the bridge: stop the running one, start a new one on the same services
    running = next(t for t in asyncio.all_tasks() if t.get_name() == "mqtt-bridge")
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    server.clock.advance(3600)  # a replay would be stamped now: an hour later
    restarted = MqttBridge(server.services, bridge(server).config)
    task = asyncio.create_task(restarted.run())
    try:
        await asyncio.wait_for(restarted.subscribed.wait(), WAIT_S)
        # the new session gets no retained message (MQTT 5 retain handling): a live marker
        # proves the session is live, and it is the only new reading
        await publish(prefix, [(topic, omg(30.0))])
        await readings(server, reader, KITCHEN, 3)
        await restarted.relay.flush()
        got = await readings(server, reader, KITCHEN, 0)
        assert sorted(r["payload"]["temperature_c"] for r in got) == [18.0, 18.5, 30.0]
        assert got[-1]["timestamp"] == "2026-11-22T13:00:00Z"  # the live one, stamped now
        assert restarted.relay.stats.readings == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_one_advertisement_heard_by_two_gateways_is_stored_once(
    server: Server, prefix: str
) -> None:
    await subscribed(server)
    reader = await server.user(Scope.READ)
    advert = {"id": "A4:C1:38:12:34:56", "name": "GVH5075_3456", "manufacturerdata": H5075_RAW}
    await publish(
        prefix,
        [
            ("home/omg-kitchen/BTtoMQTT/A4C138123456", {**advert, "rssi": -60}),
            ("home/omg-hall/BTtoMQTT/A4C138123456", {**advert, "rssi": -85}),
            MARKER,
        ],
    )
    await readings(server, reader, MARKER_ID, 1)  # everything published before it is in
    await settled(server)
    got = await readings(server, reader, KITCHEN, 0)
    assert len(got) == 1
    assert got[0]["payload"] == {
        "temperature_c": -5.3,
        "humidity_pct": 45.2,
        "battery_pct": 87.0,
        "rssi_dbm": -60,
    }
    assert got[0]["source"] == "omg-kitchen"
    assert bridge(server).relay.stats.duplicates == 1
    # the gateway whose copy was stored is a node now (role mqtt-gateway): the source resolves
    nodes = (await server.client.get("/api/nodes", headers=auth(reader))).json()["items"]
    assert {n["node_id"]: n["role"] for n in nodes} == {
        "mqtt-bridge": "mqtt-bridge",
        "omg-kitchen": "mqtt-gateway",
        "marker": "mqtt-gateway",
    }


async def test_a_gateway_last_will_is_an_availability_event_on_change(
    server: Server, prefix: str
) -> None:
    await subscribed(server)
    admin = await server.user(Scope.ADMIN)
    await publish(prefix, [("home/omg1/LWT", "online"), ("home/omg1/LWT", "online")])
    await publish(
        prefix, [("home/omg1/LWT", "offline"), ("gv2mqtt/availability", "offline"), MARKER]
    )
    await readings(server, admin, MARKER_ID, 1)
    await settled(server)
    events = (
        await server.client.get("/api/events?kind=gateway_availability", headers=auth(admin))
    ).json()["items"]
    assert [(e["node_id"], e["data"]["available"]) for e in reversed(events)] == [
        ("omg1", True),
        ("omg1", False),
        ("govee2mqtt", False),
    ]


def _samples(text: str, prefix: str) -> dict[str, float]:
    """``name{labels}`` → value of the exposition lines starting with ``prefix``."""
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def test_bridge_counters_by_gateway_kind_are_in_metrics(server: Server, prefix: str) -> None:
    await subscribed(server)
    reader = await server.user(Scope.READ)
    await publish(
        prefix,
        [
            ("home/omg-a/BTtoMQTT/A4C138123456", omg(21.0)),
            ("home/omg-b/BTtoMQTT/A4C138123456", omg(21.0, rssi=-90)),  # the same advertisement
            ("home/omg-a/BTtoMQTT/A4C138123456", "{not json"),
            ("gv2mqtt/sensor/sensor-1F80A4C138ABCDEF-sensortemperature/state", "19.25"),
            ("somebody/else", "not for us"),
            MARKER,
        ],
    )
    await readings(server, reader, MARKER_ID, 1)
    await settled(server)
    text = (await server.client.get("/metrics")).text
    got = _samples(text, "beamwarden_bridge_")
    omg_kind, g2m = '{kind="openmqttgateway"}', '{kind="govee2mqtt"}'
    assert {k: v for k, v in got.items() if k.endswith(("_total" + omg_kind, "_total" + g2m))} == {
        "beamwarden_bridge_messages_received_total" + omg_kind: 4,  # with the marker
        "beamwarden_bridge_messages_decoded_total" + omg_kind: 3,
        "beamwarden_bridge_readings_stored_total" + omg_kind: 2,
        "beamwarden_bridge_readings_duplicate_total" + omg_kind: 1,
        "beamwarden_bridge_retained_skipped_total" + omg_kind: 0,
        "beamwarden_bridge_decode_errors_total" + omg_kind: 1,
        "beamwarden_bridge_messages_received_total" + g2m: 1,
        "beamwarden_bridge_messages_decoded_total" + g2m: 1,
        "beamwarden_bridge_readings_stored_total" + g2m: 1,
        "beamwarden_bridge_readings_duplicate_total" + g2m: 0,
        "beamwarden_bridge_retained_skipped_total" + g2m: 0,
        "beamwarden_bridge_decode_errors_total" + g2m: 0,
    }
    assert got['beamwarden_bridge_messages_received_total{kind="other"}'] == 1


async def test_a_gateway_revoked_while_the_bridge_runs_is_refused_within_the_cache_time(
    server: Server, prefix: str
) -> None:
    await subscribed(server)
    reader = await server.user(Scope.READ)
    topic = "home/omg-rogue/BTtoMQTT/A4C138123456"
    await publish(prefix, [(topic, omg(20.0))])
    assert len(await readings(server, reader, KITCHEN, 1)) == 1
    await server.services.registry.revoke("omg-rogue")
    server.clock.advance(server.app.state.settings.token_cache_s)  # what the bridge knew expires
    await publish(prefix, [(topic, omg(21.0)), MARKER])
    await readings(server, reader, MARKER_ID, 1)
    await settled(server)
    got = await readings(server, reader, KITCHEN, 0)
    assert [r["payload"]["temperature_c"] for r in got] == [20.0]  # nothing after the revocation
    assert bridge(server).relay.stats.dropped_refused_gateway == 1
