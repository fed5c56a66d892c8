"""The bridge's pure parts and the relay's per-message decisions (no broker, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.protocol import is_fleet_wide
from beamwarden.protocol.readings import READING_ID_RE
from beamwarden.sensors import AvailabilityKind
from beamwarden.server.bridge import BridgeConfig, BridgeConfigError, ReadingRelay, gateway_node_id
from beamwarden.server.bridge.dedup import RecentReadings, reading_id
from beamwarden.server.bridge.relay import gateway_kind
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.container import Services
from beamwarden.server.store.ingest import stream_seq

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TOPIC = "home/omg1/BTtoMQTT/A4C138123456"


def relay(**options: Any) -> tuple[ReadingRelay, FakeClock]:
    clock = FakeClock(T0)
    services = cast(Services, SimpleNamespace(clock=clock, devices=None))
    return ReadingRelay(services, BridgeConfig("broker", **options)), clock


def advert(temp: float, rssi: int = -70, **extra: Any) -> bytes:
    return json.dumps({"id": "A4:C1:38:12:34:56", "tempc": temp, "rssi": rssi, **extra}).encode()


# --- config ----------------------------------------------------------------------------------


def test_a_broker_url_gives_host_port_tls_and_credentials() -> None:
    config = BridgeConfig.from_url("mqtts://bw:s%40cret@broker.lan", name="b1")
    assert (config.host, config.port, config.tls, config.username, config.password) == (
        "broker.lan",
        8883,
        True,
        "bw",
        "s@cret",
    )
    assert config.lease_name == "bridge:broker.lan:8883"
    assert "s@cret" not in repr(config)
    assert BridgeConfig.from_url("mqtt://127.0.0.1:1884").broker == "127.0.0.1:1884"


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://h:port"])
def test_a_broker_url_the_bridge_cannot_use_is_refused(url: str) -> None:
    with pytest.raises(BridgeConfigError):
        BridgeConfig.from_url(url)


@pytest.mark.parametrize(
    ("name", "node"),
    [
        ("OMG_ESP32_BLE", "omg_esp32_ble"),
        ("govee2mqtt", "govee2mqtt"),
        ("Theengs Gateway #2", "theengs-gateway-2"),
        ("---", "gateway"),
        ("x" * 80, "x" * 64),
    ],
)
def test_gateway_names_become_node_ids(name: str, node: str) -> None:
    assert gateway_node_id(name) == node


# --- dedup -----------------------------------------------------------------------------------


def test_the_first_copy_is_admitted_and_copies_within_the_window_are_not() -> None:
    recent = RecentReadings(window_us=10_000_000)
    first = recent.admit("ble:A", (21.0,), 0, 0)
    assert first is not None
    assert recent.admit("ble:A", (21.0,), 9_999_999, 9_999_999) is None
    assert recent.admit("ble:A", (21.5,), 1, 1) is not None  # another measurement
    assert recent.admit("ble:B", (21.0,), 1, 1) is not None  # another device
    assert recent.admit("ble:A", (21.0,), 10_000_000, 10_000_000) is not None  # window passed
    assert recent.duplicates == 1


@given(st.text(max_size=40), st.floats(allow_nan=False), st.integers(0, 2**40))
def test_reading_ids_are_opaque_ids_the_protocol_accepts(
    device: str, value: float, bucket: int
) -> None:
    rid = reading_id(device, (value,), bucket)
    assert READING_ID_RE.fullmatch(rid)
    assert stream_seq(rid) is None  # never mistaken for <stream>:<seq>
    assert rid == reading_id(device, (value,), bucket)


def test_the_cache_forgets_old_entries() -> None:
    recent = RecentReadings(window_us=10, max_entries=100)
    for i in range(1000):
        recent.admit("ble:A", (i,), i, i)
    assert len(recent) <= 11


# --- the relay's decisions -------------------------------------------------------------------


def test_a_reading_is_buffered_under_the_bridge_node_with_the_gateway_as_source() -> None:
    r, _ = relay()
    r.accept(TOPIC, advert(21.3), retain=False)
    (pending,) = r._buffer
    assert pending.gateway == "omg1"
    assert pending.reading == {
        "node_id": "mqtt-bridge",
        "sensor_id": "ble:A4C138123456",
        "sensor_type": "climate",
        "payload": {"temperature_c": 21.3, "rssi_dbm": -70},
        "timestamp": T0,
        "reading_id": pending.reading["reading_id"],
    }
    assert is_fleet_wide(pending.reading["sensor_id"])


def test_retained_readings_are_never_buffered() -> None:
    r, _ = relay()
    r.accept(TOPIC, advert(21.3), retain=True)
    assert (r.buffered, r.stats.retained) == (0, 1)
    assert r.counts()["openmqttgateway"] == {
        "received": 1,
        "decoded": 1,
        "stored": 0,
        "duplicates": 0,
        "retained": 1,
        "decode_errors": 0,
    }


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("gv2mqtt/availability", "govee2mqtt"),
        ("gv2mqtt/sensor/sensor-1F80A4C138123456-sensortemperature/state", "govee2mqtt"),
        ("home/OMG_ESP32_BLE/BTtoMQTT/A4C138123456", "openmqttgateway"),
        ("home/theengs/BTtoMQTT", "openmqttgateway"),
        ("home/omg1/LWT", "openmqttgateway"),
        ("zigbee2mqtt/lamp", "other"),
    ],
)
def test_messages_are_counted_by_the_kind_of_gateway_their_topic_belongs_to(
    topic: str, kind: str
) -> None:
    assert gateway_kind(topic) == kind


def test_a_second_gateway_and_a_repeat_are_duplicates_until_the_window_passes() -> None:
    r, clock = relay(dedup_window_s=10)
    r.accept(TOPIC, advert(21.3, rssi=-60), retain=False)
    r.accept("home/omg2/BTtoMQTT/A4C138123456", advert(21.3, rssi=-90), retain=False)
    clock.advance(5)
    r.accept(TOPIC, advert(21.3), retain=False)
    clock.advance(6)
    r.accept(TOPIC, advert(21.3), retain=False)
    assert (r.buffered, r.stats.duplicates) == (2, 2)


def test_the_device_time_is_kept() -> None:
    r, _ = relay()
    r.accept(TOPIC, advert(21.3, time="2026-11-22T11:59:58+01:00"), retain=False)
    assert r._buffer[0].reading["timestamp"] == datetime(2026, 11, 22, 10, 59, 58, tzinfo=UTC)


def test_fahrenheit_and_the_prefix_apply() -> None:
    r, _ = relay(fahrenheit=True, strip_prefix="site-a/")
    r.accept(
        "site-a/gv2mqtt/sensor/sensor-1F80A4C138123456-sensortemperature/state", b"70.7", False
    )
    r.accept(
        "site-b/gv2mqtt/sensor/sensor-1F80A4C138123456-sensortemperature/state", b"70.7", False
    )
    assert r._buffer[0].reading["payload"] == {"temperature_c": 21.5}
    assert (r.buffered, r.stats.ignored) == (1, 1)


def test_availability_changes_are_events_and_retained_states_are_not() -> None:
    r, _ = relay()
    r.accept("home/omg1/LWT", b"online", retain=True)  # the current state, of unknown age
    r.accept("home/omg1/LWT", b"online", retain=False)  # no change
    r.accept("home/omg1/LWT", b"offline", retain=False)
    r.accept("gv2mqtt/sensor/sensor-1F80A4C138123456-gv2mqtt-status/state", b"Missing", False)
    assert [(e.decoded.subject, e.decoded.available) for e in r._events] == [
        ("omg1", False),
        ("ble:A4C138123456", False),
    ]
    assert r.availability[(AvailabilityKind.GATEWAY, "omg1")] is False


def test_bad_messages_are_counted_not_raised() -> None:
    r, _ = relay()
    r.accept(TOPIC, b"{not json", retain=False)
    r.accept("home/omg1/LWT", b"maybe", retain=False)
    assert (r.stats.decode_errors, r.buffered) == (2, 0)


def test_a_full_buffer_drops_the_oldest_and_counts_them() -> None:
    r, clock = relay(max_buffer=3)
    for i in range(5):
        r.accept(TOPIC, advert(20.0 + i), retain=False)
        clock.advance(1)
    assert r.buffered == 3
    assert r.stats.dropped_buffer_full == 2
    assert [p.reading["payload"]["temperature_c"] for p in r._buffer] == [22.0, 23.0, 24.0]
