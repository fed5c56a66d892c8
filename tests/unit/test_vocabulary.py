"""Unit tests of ``protocol.vocabulary``: one name and one unit per quantity."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamwarden.protocol import (
    VOCABULARY,
    FieldKind,
    FieldSpec,
    GeigerMode,
    InstanceState,
    NodeStatus,
    Scope,
    SensorType,
    is_fleet_wide,
    is_ident,
)
from beamwarden.protocol.vocabulary import (
    FIELD_NAME_RE,
    IDENT_PATTERN,
    IDENT_RE,
    SENSOR_ID_RE,
    UNIT_HINTS,
)


def test_enum_values() -> None:
    assert [s.value for s in SensorType] == ["geiger", "climate", "system"]
    assert [m.value for m in GeigerMode] == ["SLOW", "FAST", "INST"]
    assert [s.value for s in NodeStatus] == ["online", "degraded", "offline", "unknown"]
    assert [s.value for s in InstanceState] == [
        "idle",
        "starting",
        "warming",
        "active",
        "stopping",
        "stopped",
    ]
    assert {s.value for s in Scope} == {"node", "relay", "enrol", "read", "metrics", "admin"}
    assert [k.value for k in FieldKind] == ["number", "text"]


def test_enums_are_strings() -> None:
    assert str(NodeStatus.ONLINE) == "online"
    assert isinstance(NodeStatus.ONLINE, str)
    assert f"{SensorType.GEIGER}" == "geiger"


def test_vocabulary_matches_protocol_md() -> None:
    assert set(VOCABULARY) == {t.value for t in SensorType}
    numbers = {
        t: {n for n, s in f.items() if s.kind is FieldKind.NUMBER} for t, f in VOCABULARY.items()
    }
    texts = {
        t: {n for n, s in f.items() if s.kind is FieldKind.TEXT} for t, f in VOCABULARY.items()
    }
    assert numbers == {
        "geiger": {"cps", "cpm", "counts", "usv_per_hour"},
        "climate": {"temperature_c", "humidity_pct", "pressure_pa", "battery_pct", "rssi_dbm"},
        "system": {
            "cpu_percent",
            "mem_percent",
            "disk_percent",
            "temperature_c",
            "load1",
            "uptime_s",
        },
    }
    assert texts == {
        "geiger": {"mode", "tube_type", "firmware_version"},
        "climate": set(),
        "system": set(),
    }


def test_one_unit_per_quantity() -> None:
    assert VOCABULARY["climate"]["temperature_c"] == VOCABULARY["system"]["temperature_c"]
    assert VOCABULARY["climate"]["temperature_c"] == FieldSpec(FieldKind.NUMBER, "°C", -273.15)
    assert VOCABULARY["climate"]["rssi_dbm"].minimum is None


def test_vocabulary_field_names_are_well_formed() -> None:
    for fields in VOCABULARY.values():
        for name in fields:
            assert FIELD_NAME_RE.fullmatch(name)


def test_every_unit_hint_points_to_a_known_field_and_is_not_one() -> None:
    known = {name for fields in VOCABULARY.values() for name in fields}
    for wrong, hint in UNIT_HINTS.items():
        assert wrong not in known
        assert hint.split(" ")[0] in known


@pytest.mark.parametrize("value", ["a", "0", "a" * 64, "beamrider-0001", "pi-log", "n.1_x-y"])
def test_is_ident_accepts(value: str) -> None:
    assert is_ident(value)


@pytest.mark.parametrize(
    "value", ["", "a" * 65, "A", "-a", ".a", "_a", "a b", "a\n", "a/b", "é", "a:b"]
)
def test_is_ident_refuses(value: str) -> None:
    assert not is_ident(value)


@settings(max_examples=200)
@given(st.text(alphabet="aZ09._-\n :", max_size=70))
def test_ident_pattern_for_json_schema_agrees_with_the_python_regex(value: str) -> None:
    anchored = re.compile(IDENT_PATTERN.replace("$", r"\Z"))  # JSON Schema's $ is end of text
    assert (anchored.match(value) is not None) == (IDENT_RE.fullmatch(value) is not None)


@pytest.mark.parametrize(
    ("sensor_id", "fleet_wide"),
    [
        ("ble:A4C138123456", True),
        ("govee:33FA4381ECA1010A", True),
        ("zigbee2:0x00158d0001", True),
        ("geiger-0", False),
        ("bme280@0x76", False),
        ("BLE:A4C1", False),  # a scheme is lower case
        ("1ble:x", False),
        (":x", False),
        ("ble", False),
        ("bme280@0x76:1", False),
    ],
)
def test_is_fleet_wide(sensor_id: str, fleet_wide: bool) -> None:
    assert is_fleet_wide(sensor_id) is fleet_wide


@pytest.mark.parametrize("sensor_id", ["geiger-0", "bme280@0x76", "ble:A4C138123456", "a/b.c_d"])
def test_sensor_id_alphabet(sensor_id: str) -> None:
    assert SENSOR_ID_RE.fullmatch(sensor_id)
