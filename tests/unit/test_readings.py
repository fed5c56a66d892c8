"""Unit tests of ``protocol.readings``: three wire shapes in, one normalised :class:`Reading` out.

Captured-style bodies live in ``tests/fixtures/readings``; each fixture test asserts the *whole*
expected result. Nothing here touches a clock, a service or the network.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beamwarden.protocol import (
    MAX_BATCH,
    VOCABULARY,
    BatchTooLarge,
    FieldKind,
    Issue,
    Reading,
    SchemaViolation,
    WireReading,
    decode_readings,
)
from beamwarden.protocol.readings import MAX_FIELDS, MAX_TEXT

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "readings"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def decode(obj: Any, **kw: Any) -> list[Reading]:
    return decode_readings(body(obj), **kw)


def violation(raw: bytes, **kw: Any) -> SchemaViolation:
    with pytest.raises(SchemaViolation) as info:
        decode_readings(raw, **kw)
    return info.value


def issues(obj: Any, **kw: Any) -> list[Issue]:
    return violation(body(obj), **kw).issues


def where(found: list[Issue]) -> set[tuple[int | None, str]]:
    return {(i.index, i.field) for i in found}


def only_issue(obj: Any, **kw: Any) -> Issue:
    found = issues(obj, **kw)
    assert len(found) == 1, found
    return found[0]


GENERIC: dict[str, Any] = {
    "node_id": "beamrider-0001",
    "sensor_type": "climate",
    "payload": {"temperature_c": 21.5},
    "timestamp": "2025-01-01T00:00:00Z",
}
LOGEXP: dict[str, Any] = {
    "counts_per_second": 1,
    "counts_per_minute": 60,
    "microsieverts_per_hour": 0.34,
    "mode": "slow",
    "device_id": "logexp-lab",
}
FLEET: dict[str, Any] = {"node_id": "beamrider-0001", "cps": 0.5, "cpm": 30}


def generic(**changes: Any) -> dict[str, Any]:
    return _changed(GENERIC, changes)


def logexp(**changes: Any) -> dict[str, Any]:
    return _changed(LOGEXP, changes)


def fleet(**changes: Any) -> dict[str, Any]:
    return _changed(FLEET, changes)


_DROP = object()


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


# --------------------------------------------------------------------------------------------
# Captured-style fixtures, one whole expected result each
# --------------------------------------------------------------------------------------------

EXPECTED: dict[str, list[Reading]] = {
    "logexp_geiger.json": [
        Reading(
            node_id="logexp-lab",
            sensor_id="geiger",
            sensor_type="geiger",
            payload={"cps": 2, "cpm": 118, "usv_per_hour": 0.6726, "mode": "SLOW"},
            timestamp=datetime(2025, 3, 14, 14, 26, 53, 589793, tzinfo=UTC),
        )
    ],
    "logexp_geiger_no_timestamp.json": [
        Reading(
            node_id="logexp-default",
            sensor_id="geiger",
            sensor_type="geiger",
            payload={"cps": 0, "cpm": 17, "usv_per_hour": 0.0969, "mode": "FAST"},
            timestamp=None,
        )
    ],
    "fleet_geiger.json": [
        Reading(
            node_id="beamrider-0001",
            sensor_id="geiger-0",
            sensor_type="geiger",
            payload={
                "cps": 0.62,
                "cpm": 37.0,
                "counts": 37,
                "tube_type": "SBM-20",
                "firmware_version": "GMC-320+ Re 4.22",
            },
            timestamp=utc(2025, 3, 14, 14, 26, 53),
            reading_id="beamrider-0001.q:1042",
        )
    ],
    "pilog_v2_climate.json": [
        Reading(
            node_id="pi-log-kitchen",
            sensor_id="bme280@0x76",
            sensor_type="climate",
            payload={"temperature_c": 21.37, "humidity_pct": 44.1, "pressure_pa": 101325.0},
            timestamp=utc(2025, 3, 14, 14, 26, 53),
            reading_id="9f1c2a7e:77",
        )
    ],
    "pilog_v2_batch.json": [
        Reading(
            node_id="pi-log-garage",
            sensor_id="govee:33FA4381ECA1010A",
            sensor_type="climate",
            payload={
                "temperature_c": -3.5,
                "humidity_pct": 81.0,
                "battery_pct": 64,
                "rssi_dbm": -87,
            },
            timestamp=datetime(2025, 3, 14, 14, 27, 0, 250000, tzinfo=UTC),
            reading_id="garage-q:501",
        ),
        Reading(
            node_id="pi-log-garage",
            sensor_id="system",
            sensor_type="system",
            payload={
                "cpu_percent": 12.5,
                "mem_percent": 38.2,
                "disk_percent": 71.0,
                "temperature_c": 52.1,
                "load1": 0.42,
                "uptime_s": 86400,
            },
            timestamp=utc(2025, 3, 14, 14, 27),
            reading_id="garage-q:502",
        ),
        Reading(
            node_id="pi-log-garage",
            sensor_id="sds011-0",
            sensor_type="air_quality",
            payload={"pm2_5_ugm3": 7.4, "pm10_ugm3": 12, "fan_on": True, "status_text": "ok"},
            timestamp=utc(2025, 3, 14, 14, 27),
        ),
    ],
    "wrapped_mixed.json": [
        Reading(
            node_id="logexp-lab",
            sensor_id="geiger",
            sensor_type="geiger",
            payload={"cps": 1, "cpm": 64, "usv_per_hour": 0.3648, "mode": "INST"},
            timestamp=utc(2025, 3, 14, 14, 28),
        ),
        Reading(
            node_id="beamrider-0002",
            sensor_id="geiger-1",
            sensor_type="geiger",
            payload={"cps": 0.5, "cpm": 30.0},
            timestamp=None,
            reading_id="b2:9",
        ),
        Reading(
            node_id="pi-log-kitchen",
            sensor_id="geiger",
            sensor_type="geiger",
            payload={
                "cps": 0.4,
                "cpm": 24,
                "usv_per_hour": 0.14,
                "mode": "SLOW",
                "tube_type": "J305",
            },
            timestamp=utc(2025, 3, 14, 14, 28),
        ),
    ],
}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.name for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_decodes_to_the_whole_expected_result(name: str) -> None:
    got = decode_readings((FIXTURES / name).read_bytes(), default_node_id="logexp-default")
    assert got == EXPECTED[name]
    for reading in got:
        assert reading.timestamp is None or reading.timestamp.tzinfo is UTC


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_decodes_the_same_in_every_body_form(name: str) -> None:
    data = json.loads((FIXTURES / name).read_bytes())
    items = data["readings"] if isinstance(data, dict) and "readings" in data else data
    items = items if isinstance(items, list) else [items]
    expected = EXPECTED[name]
    kw = {"default_node_id": "logexp-default"}
    assert decode(items, **kw) == expected
    assert decode({"readings": items}, **kw) == expected
    if len(items) == 1:
        assert decode(items[0], **kw) == expected


def test_fleet_geiger_keeps_the_exact_types() -> None:
    (reading,) = decode(fleet(counts=3))
    assert reading.payload == {"cps": 0.5, "cpm": 30.0, "counts": 3}
    assert type(reading.payload["cpm"]) is float  # declared a number: an int on the wire is fine
    assert type(reading.payload["counts"]) is int


# --------------------------------------------------------------------------------------------
# Body forms
# --------------------------------------------------------------------------------------------


def test_single_object_array_and_wrapper_are_equivalent() -> None:
    one = decode(GENERIC)
    assert decode([GENERIC]) == one
    assert decode({"readings": [GENERIC]}) == one
    assert one == [
        Reading(
            "beamrider-0001",
            "climate",
            "climate",
            {"temperature_c": 21.5},
            utc(2025, 1, 1),
        )
    ]


@pytest.mark.parametrize("raw", [b"[]", b'{"readings": []}', b" [ ] ", b'{"readings":[]}\n'])
def test_empty_batch_is_an_empty_list(raw: bytes) -> None:
    assert decode_readings(raw) == []


def test_order_of_a_batch_is_kept() -> None:
    items = [generic(reading_id=f"q:{n}") for n in range(1, 6)]
    assert [r.reading_id for r in decode(items)] == [f"q:{n}" for n in range(1, 6)]


@pytest.mark.parametrize(
    ("raw", "starts"),
    [
        (b"", "the body is not valid JSON"),
        (b"   ", "the body is not valid JSON"),
        (b"{", "the body is not valid JSON"),
        (b'{"node_id": }', "the body is not valid JSON"),
        (b"\xff\xfe\x00", "the body is not valid JSON"),
        (b"[1, 2", "the body is not valid JSON"),
        (b"{} {}", "the body is not valid JSON"),
        (b"NaN", "the body is not valid JSON"),
    ],
)
def test_non_json_is_one_body_issue(raw: bytes, starts: str) -> None:
    exc = violation(raw)
    assert not isinstance(exc, BatchTooLarge)
    (issue,) = exc.issues
    assert issue.index is None
    assert issue.field == ""
    assert issue.message.startswith(starts)


@pytest.mark.parametrize("raw", [b"5", b"-1.5", b'"reading"', b"null", b"true", b"false"])
def test_json_scalar_is_one_body_issue(raw: bytes) -> None:
    (issue,) = violation(raw).issues
    assert issue == Issue(
        None, "", 'expected a reading, an array of readings or {"readings": [...]}'
    )


def test_array_item_that_is_not_an_object_is_reported_by_index() -> None:
    found = issues([GENERIC, 5, "x", None, [GENERIC]])
    assert [i.index for i in found] == [1, 2, 3, 4]
    assert all(i.field == "" and i.message.startswith("Expected `object`") for i in found)


# --------------------------------------------------------------------------------------------
# The {"readings": [...]} wrapper
# --------------------------------------------------------------------------------------------


def test_wrapper_with_an_unknown_extra_key_is_refused() -> None:
    exc = violation(body({"readings": [GENERIC], "batch": 7}))
    assert exc.issues == [Issue(None, "batch", 'unexpected beside "readings"')]
    assert exc.message == "the body is invalid; nothing was stored"


def test_wrapper_with_a_reading_field_beside_it_is_refused_not_ignored() -> None:
    # A node_id meant for the whole batch would otherwise be silently dropped (fast path).
    exc = violation(
        body({"readings": [GENERIC], "node_id": "other", "timestamp": GENERIC["timestamp"]})
    )
    assert exc.issues == [
        Issue(None, "node_id", 'unexpected beside "readings"'),
        Issue(None, "timestamp", 'unexpected beside "readings"'),
    ]


def test_wrapper_extra_keys_and_bad_items_are_all_reported() -> None:
    found = issues({"zeta": 1, "readings": [GENERIC, generic(node_id="BAD")], "alpha": 2})
    assert [(i.index, i.field) for i in found] == [
        (None, "alpha"),
        (None, "zeta"),
        (1, "node_id"),
    ]


def test_wrapper_extra_known_key_with_a_bad_item_takes_the_slow_path_too() -> None:
    found = issues({"readings": [GENERIC, logexp(counts_per_second=-1)], "sensor_type": "x"})
    assert where(found) == {(None, "sensor_type"), (1, "counts_per_second")}


@pytest.mark.parametrize("value", [5, "x", {"a": 1}, True])
def test_wrapper_readings_must_be_an_array(value: Any) -> None:
    assert issues({"readings": value}) == [Issue(None, "readings", "expected an array of readings")]


def test_wrapper_readings_must_be_an_array_and_extras_are_reported_too() -> None:
    assert issues({"readings": 5, "x": 1}) == [
        Issue(None, "x", 'unexpected beside "readings"'),
        Issue(None, "readings", "expected an array of readings"),
    ]


def test_a_reading_cannot_contain_readings() -> None:
    found = issues([GENERIC, {**GENERIC, "readings": [GENERIC]}])
    assert where(found) == {(1, "readings")}
    assert found[0].message.startswith("a reading cannot contain readings")


def test_nested_wrapper_in_a_wrapper_is_reported() -> None:
    found = issues({"readings": [{"readings": [GENERIC]}]})
    assert (0, "readings") in where(found)


def test_nested_readings_with_a_bad_inner_item_are_reported_at_the_outer_index() -> None:
    found = issues([GENERIC, {"readings": [{"nope": 1}]}])
    assert found == [Issue(1, "readings", "Object contains unknown field `nope`")]


# --------------------------------------------------------------------------------------------
# Node ids
# --------------------------------------------------------------------------------------------


def test_default_node_id_applies_only_when_the_reading_names_none() -> None:
    no_node = generic(node_id=_DROP)
    assert decode(no_node, default_node_id="own-node")[0].node_id == "own-node"
    assert decode(GENERIC, default_node_id="own-node")[0].node_id == "beamrider-0001"
    assert decode(logexp(device_id=_DROP), default_node_id="own")[0].node_id == "own"
    assert decode(fleet(node_id=_DROP), default_node_id="own")[0].node_id == "own"


def test_no_node_and_no_default_is_refused() -> None:
    assert only_issue(generic(node_id=_DROP)) == Issue(
        0, "node_id", "required: which node took this reading"
    )


def test_device_id_names_the_node_in_a_generic_reading() -> None:
    (reading,) = decode(generic(node_id=_DROP, device_id="pi-log-1"))
    assert reading.node_id == "pi-log-1"


def test_device_id_equal_to_node_id_is_fine() -> None:
    (reading,) = decode(generic(device_id="beamrider-0001"))
    assert reading.node_id == "beamrider-0001"


def test_device_id_different_from_node_id_is_refused() -> None:
    assert only_issue(generic(device_id="someone-else")) == Issue(
        0, "device_id", "device_id and node_id name different nodes"
    )


@pytest.mark.parametrize(
    "node_id", ["Beamrider", "-lead", ".lead", "", "a" * 65, "has space", "trail\n", "ü"]
)
def test_malformed_node_id_is_refused(node_id: str) -> None:
    issue = only_issue(generic(node_id=node_id))
    assert (issue.index, issue.field) == (0, "node_id")


@pytest.mark.parametrize("node_id", ["a", "0", "a" * 64, "n.1_b-c", "9lives"])
def test_well_formed_node_id_is_accepted(node_id: str) -> None:
    assert decode(generic(node_id=node_id))[0].node_id == node_id


def test_malformed_device_id_is_refused() -> None:
    issue = only_issue(logexp(device_id="LogExp"))
    assert (issue.index, issue.field) == (0, "node_id")


def test_text_fields_longer_than_256_are_refused_by_the_decoder() -> None:
    issue = only_issue(generic(node_id="a" * 257))
    assert (issue.index, issue.field) == (0, "node_id")
    assert "length" in issue.message


# --------------------------------------------------------------------------------------------
# sensor_id, sensor_type, reading_id
# --------------------------------------------------------------------------------------------


def test_sensor_id_defaults_to_the_sensor_type() -> None:
    assert decode(GENERIC)[0].sensor_id == "climate"
    assert decode(generic(sensor_type="air_quality", payload={"pm10_ugm3": 1}))[0].sensor_id == (
        "air_quality"
    )
    assert decode(LOGEXP)[0].sensor_id == "geiger"
    assert decode(FLEET)[0].sensor_id == "geiger"


@pytest.mark.parametrize(
    "sensor_id", ["geiger-0", "bme280@0x76", "ble:A4C138123456", "govee:33FA4381ECA1010A", "a/b"]
)
def test_sensor_id_is_kept(sensor_id: str) -> None:
    assert decode(generic(sensor_id=sensor_id))[0].sensor_id == sensor_id
    assert decode(fleet(sensor_id=sensor_id))[0].sensor_id == sensor_id


@pytest.mark.parametrize("sensor_id", ["", "-x", "has space", "a" * 129, "ö"])
def test_malformed_sensor_id_is_refused(sensor_id: str) -> None:
    issue = only_issue(generic(sensor_id=sensor_id))
    assert (issue.index, issue.field) == (0, "sensor_id")


def test_generic_reading_needs_a_sensor_type() -> None:
    assert only_issue(generic(sensor_type=_DROP)) == Issue(0, "sensor_type", "required")


@pytest.mark.parametrize("sensor_type", ["Climate", "", "-x", "a b"])
def test_malformed_sensor_type_is_refused(sensor_type: str) -> None:
    issue = only_issue(generic(sensor_type=sensor_type))
    assert (issue.index, issue.field) == (0, "sensor_type")


def test_geiger_shapes_may_say_they_are_geiger() -> None:
    assert decode(logexp(sensor_type="geiger"))[0].sensor_type == "geiger"
    assert decode(fleet(sensor_type="geiger"))[0].sensor_type == "geiger"


@pytest.mark.parametrize("shape", [LOGEXP, FLEET])
def test_geiger_shapes_cannot_claim_another_sensor_type(shape: dict[str, Any]) -> None:
    assert only_issue({**shape, "sensor_type": "climate"}) == Issue(
        0, "sensor_type", 'a Geiger-shaped reading has sensor_type "geiger"'
    )


@pytest.mark.parametrize("reading_id", ["q:1", "x", "~" * 128, "550e8400-e29b-41d4-a716"])
def test_reading_id_is_kept(reading_id: str) -> None:
    assert decode(generic(reading_id=reading_id))[0].reading_id == reading_id


@pytest.mark.parametrize("reading_id", ["", "a b", "x" * 129, "é:1", "tab\t1"])
def test_malformed_reading_id_is_refused(reading_id: str) -> None:
    issue = only_issue(generic(reading_id=reading_id))
    assert (issue.index, issue.field) == (0, "reading_id")


# --------------------------------------------------------------------------------------------
# Shapes: which is which, what each requires
# --------------------------------------------------------------------------------------------


def test_no_shape_at_all_is_refused() -> None:
    assert only_issue({"node_id": "n", "timestamp": "2025-01-01T00:00:00Z"}) == Issue(
        0, "payload", "required: a generic reading has a payload (or send a Geiger shape)"
    )


@pytest.mark.parametrize(
    "item",
    [
        {**GENERIC, "mode": "slow"},
        {**GENERIC, "cps": 1.0},
        {**LOGEXP, "cps": 1.0},
        {**LOGEXP, "tube_type": "SBM-20"},
        {**FLEET, "payload": {"x": 1}},
        {**FLEET, "counts_per_minute": 5},
    ],
)
def test_mixed_shapes_are_refused(item: dict[str, Any]) -> None:
    found = issues(item)
    assert (0, "") in where(found)
    assert any("mixes the fields" in i.message for i in found)


@pytest.mark.parametrize(
    "missing", ["counts_per_second", "counts_per_minute", "microsieverts_per_hour", "mode"]
)
def test_logexp_needs_all_four_fields(missing: str) -> None:
    assert only_issue(logexp(**{missing: _DROP})) == Issue(
        0, missing, "required in a LogExp Geiger reading"
    )


def test_logexp_with_only_a_mode_names_every_missing_field() -> None:
    found = issues({"mode": "fast", "device_id": "x"})
    assert where(found) == {
        (0, "counts_per_second"),
        (0, "counts_per_minute"),
        (0, "microsieverts_per_hour"),
    }


@pytest.mark.parametrize("missing", ["cps", "cpm"])
def test_fleet_geiger_needs_cps_and_cpm(missing: str) -> None:
    assert only_issue(fleet(**{missing: _DROP})) == Issue(
        0, missing, "required in a fleet Geiger reading"
    )


@pytest.mark.parametrize("extra", ["counts", "tube_type", "firmware_version"])
def test_a_fleet_only_field_makes_it_a_fleet_reading(extra: str) -> None:
    value = 3 if extra == "counts" else "SBM-20"
    found = issues({"node_id": "n", extra: value})
    assert where(found) == {(0, "cps"), (0, "cpm")}


@pytest.mark.parametrize(
    ("mode", "stored"),
    [("slow", "SLOW"), ("FAST", "FAST"), ("Inst", "INST"), ("sLoW", "SLOW")],
)
def test_logexp_mode_any_case_is_upper_cased(mode: str, stored: str) -> None:
    assert decode(logexp(mode=mode))[0].payload["mode"] == stored


@pytest.mark.parametrize("mode", ["medium", "", "slow ", "s"])
def test_logexp_unknown_mode_is_refused(mode: str) -> None:
    assert only_issue(logexp(mode=mode)) == Issue(0, "mode", "must be SLOW, FAST or INST")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"counts_per_second": -1}, "counts_per_second"),
        ({"counts_per_minute": -5}, "counts_per_minute"),
        ({"microsieverts_per_hour": -0.01}, "microsieverts_per_hour"),
        ({"counts_per_second": 1.5}, "counts_per_second"),
        ({"counts_per_second": "1"}, "counts_per_second"),
        ({"counts_per_second": True}, "counts_per_second"),
        ({"microsieverts_per_hour": "0.1"}, "microsieverts_per_hour"),
        ({"microsieverts_per_hour": False}, "microsieverts_per_hour"),
        ({"mode": 1}, "mode"),
    ],
)
def test_logexp_field_types_and_signs(changes: dict[str, Any], field: str) -> None:
    issue = only_issue(logexp(**changes))
    assert (issue.index, issue.field) == (0, field)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cps": -0.1}, "cps"),
        ({"cpm": -1}, "cpm"),
        ({"counts": -1}, "counts"),
        ({"counts": 1.5}, "counts"),
        ({"counts": 1.0}, "counts"),
        ({"cps": True}, "cps"),
        ({"cpm": "30"}, "cpm"),
        ({"tube_type": 20}, "tube_type"),
        ({"tube_type": "x" * 257}, "tube_type"),
    ],
)
def test_fleet_field_types_and_signs(changes: dict[str, Any], field: str) -> None:
    issue = only_issue(fleet(**changes))
    assert (issue.index, issue.field) == (0, field)


def test_zero_counts_are_fine() -> None:
    (a,) = decode(logexp(counts_per_second=0, counts_per_minute=0, microsieverts_per_hour=0))
    assert a.payload == {"cps": 0, "cpm": 0, "usv_per_hour": 0.0, "mode": "SLOW"}
    (b,) = decode(fleet(cps=0, cpm=0, counts=0))
    assert b.payload == {"cps": 0.0, "cpm": 0.0, "counts": 0}


def test_large_counts_are_kept_exactly() -> None:
    (reading,) = decode(fleet(counts=2**62))
    assert reading.payload["counts"] == 2**62


def test_a_number_beyond_double_range_is_refused() -> None:
    raw = b'{"node_id": "n", "cps": 1e999, "cpm": 1}'
    assert [(i.index, i.field) for i in violation(raw).issues] == [(0, "cps")]


# --------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2025-01-01T00:00:00Z", utc(2025, 1, 1)),
        ("2025-01-01T00:00:00z", utc(2025, 1, 1)),
        ("2025-01-01T00:00:00+00:00", utc(2025, 1, 1)),
        ("2025-01-01T00:00:00-00:00", utc(2025, 1, 1)),
        ("2025-01-01T05:30:00+05:30", utc(2025, 1, 1)),
        ("2024-12-31T19:00:00-05:00", utc(2025, 1, 1)),
        ("2025-01-01T00:00:00+23:59", utc(2024, 12, 31, 0, 1)),
        ("2025-01-01T00:00:00.5Z", datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2025-01-01T00:00:00.123456+01:00", datetime(2024, 12, 31, 23, 0, 0, 123456, tzinfo=UTC)),
        ("2024-02-29T23:59:59-00:01", utc(2024, 3, 1, 0, 0, 59)),
        ("0001-01-01T00:00:00-01:00", utc(1, 1, 1, 1)),
        ("9999-12-31T23:59:59+01:00", utc(9999, 12, 31, 22, 59, 59)),
        ("9999-12-31T23:59:59Z", utc(9999, 12, 31, 23, 59, 59)),
    ],
)
def test_timestamps_with_a_zone_are_normalised_to_utc(text: str, instant: datetime) -> None:
    for item in (generic(timestamp=text), logexp(timestamp=text), fleet(timestamp=text)):
        (reading,) = decode(item)
        assert reading.timestamp == instant
        assert reading.timestamp is not None
        assert reading.timestamp.tzinfo is UTC
        assert reading.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize("shape", [LOGEXP, FLEET])
def test_geiger_without_timestamp_has_none(shape: dict[str, Any]) -> None:
    (reading,) = decode(shape)
    assert reading.timestamp is None


def test_geiger_with_an_explicit_null_timestamp_has_none() -> None:
    assert decode(logexp(timestamp=None))[0].timestamp is None


def test_generic_without_timestamp_is_refused() -> None:
    issue = only_issue(generic(timestamp=_DROP))
    assert (issue.index, issue.field) == (0, "timestamp")
    assert issue.message.startswith("required: ISO-8601 with a zone")


@pytest.mark.parametrize("shape", [GENERIC, LOGEXP, FLEET])
@pytest.mark.parametrize(
    "text", ["2025-01-01T00:00:00", "2025-01-01T00:00:00.123456", "2025-01-01 12:00:00"]
)
def test_naive_timestamps_are_refused(shape: dict[str, Any], text: str) -> None:
    issue = only_issue({**shape, "timestamp": text})
    assert (issue.index, issue.field) == (0, "timestamp")
    assert "timezone" in issue.message


@pytest.mark.parametrize(
    "value",
    [
        1735689600,
        1735689600.5,
        "1735689600",
        "2025-01-01",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-01-01T24:00:01Z",
        "2024-12-31T23:59:60Z",
        "2025-01-01T00:00:00+24:00",
        "0000-01-01T00:00:00Z",
        True,
    ],
)
def test_timestamps_that_are_not_iso_8601_are_refused(value: Any) -> None:
    issue = only_issue(generic(timestamp=value))
    assert (issue.index, issue.field) == (0, "timestamp")


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:59:59.999999+01:00",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:30:00-00:31",
        "9999-12-31T23:59:59.9999999Z",
    ],
)
@pytest.mark.parametrize("shape", [GENERIC, LOGEXP, FLEET])
def test_timestamp_overflowing_utc_is_an_issue_not_a_crash(
    shape: dict[str, Any], text: str
) -> None:
    issue = only_issue({**shape, "timestamp": text})
    assert (issue.index, issue.field) == (0, "timestamp")


def test_timestamp_overflow_in_a_batch_is_reported_by_index() -> None:
    items = [GENERIC, generic(timestamp="0001-01-01T00:00:00+01:00"), GENERIC]
    assert issues(items) == [Issue(1, "timestamp", "out of range")]


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sensor_type", "name", "hint"),
    [
        ("climate", "temperature", "temperature_c"),
        ("climate", "temperature_f", "temperature_c (convert °F to °C)"),
        ("climate", "temp", "temperature_c"),
        ("climate", "humidity", "humidity_pct"),
        ("climate", "pressure_hpa", "pressure_pa (1 hPa = 100 Pa)"),
        ("climate", "rssi", "rssi_dbm"),
        ("geiger", "microsieverts_per_hour", "usv_per_hour"),
        ("geiger", "counts_per_minute", "cpm"),
        ("system", "uptime", "uptime_s"),
        ("system", "uptime_seconds", "uptime_s"),
    ],
)
def test_unknown_field_of_a_known_type_is_refused_with_the_unit_hint(
    sensor_type: str, name: str, hint: str
) -> None:
    issue = only_issue(generic(sensor_type=sensor_type, payload={name: 1}))
    assert issue == Issue(0, f"payload.{name}", f"not a {sensor_type} field; use {hint}")


def test_unknown_field_without_a_hint_lists_the_known_fields() -> None:
    issue = only_issue(generic(sensor_type="climate", payload={"co2_ppm": 400}))
    assert issue == Issue(
        0,
        "payload.co2_ppm",
        "not a climate field (known: temperature_c, humidity_pct, pressure_pa, battery_pct, "
        "rssi_dbm)",
    )


def test_a_field_of_another_known_type_is_refused() -> None:
    issue = only_issue(generic(sensor_type="climate", payload={"cpu_percent": 3}))
    assert issue.field == "payload.cpu_percent"


@pytest.mark.parametrize(
    ("sensor_type", "name", "value", "message"),
    [
        ("geiger", "cps", -1, "must be >= 0"),
        ("geiger", "counts", -3, "must be >= 0"),
        ("geiger", "usv_per_hour", -0.001, "must be >= 0"),
        ("climate", "temperature_c", -273.16, "must be >= -273.15"),
        ("climate", "humidity_pct", -0.5, "must be >= 0"),
        ("system", "uptime_s", -1, "must be >= 0"),
        ("climate", "temperature_c", "21.5", "must be a number (°C)"),
        ("climate", "temperature_c", True, "must be a number (°C)"),
        ("climate", "humidity_pct", False, "must be a number (%)"),
        ("climate", "temperature_c", None, "must be a number (°C)"),
        ("system", "load1", [1], "must be a number (no unit)"),
        ("geiger", "cpm", {"v": 1}, "must be a number (counts/min)"),
        ("geiger", "mode", 1, "must be text of at most 256 characters"),
        ("geiger", "tube_type", 20, "must be text of at most 256 characters"),
        ("geiger", "tube_type", "x" * 257, "must be text of at most 256 characters"),
        ("geiger", "mode", "medium", "must be SLOW, FAST or INST"),
    ],
)
def test_vocabulary_values(sensor_type: str, name: str, value: Any, message: str) -> None:
    issue = only_issue(generic(sensor_type=sensor_type, payload={name: value}))
    assert issue == Issue(0, f"payload.{name}", message)


@pytest.mark.parametrize(
    ("sensor_type", "payload"),
    [
        ("climate", {"temperature_c": -273.15, "rssi_dbm": -120, "humidity_pct": 0}),
        ("climate", {"temperature_c": 1e300, "pressure_pa": 0.0}),
        ("system", {"load1": 0, "uptime_s": 10**15}),
        ("geiger", {"cps": 0, "tube_type": "x" * 256, "firmware_version": "1.2"}),
        ("geiger", {"mode": "INST"}),
    ],
)
def test_vocabulary_boundaries_are_accepted(sensor_type: str, payload: dict[str, Any]) -> None:
    (reading,) = decode(generic(sensor_type=sensor_type, payload=payload))
    assert reading.payload == payload


def test_generic_geiger_mode_is_upper_cased_and_nothing_else_changes() -> None:
    sent = {"cps": 1.5, "mode": "fast", "tube_type": "SBM-20"}
    (reading,) = decode(generic(sensor_type="geiger", payload=sent))
    assert reading.payload == {"cps": 1.5, "mode": "FAST", "tube_type": "SBM-20"}
    assert list(reading.payload) == ["cps", "mode", "tube_type"]


def test_generic_geiger_mode_already_upper_is_kept() -> None:
    (reading,) = decode(generic(sensor_type="geiger", payload={"mode": "SLOW"}))
    assert reading.payload == {"mode": "SLOW"}


def test_every_bad_field_of_one_payload_is_reported() -> None:
    payload = {"temperature": 1, "humidity_pct": -1, "pressure_pa": "x", "battery_pct": 50}
    found = issues(generic(payload=payload))
    assert where(found) == {
        (0, "payload.temperature"),
        (0, "payload.humidity_pct"),
        (0, "payload.pressure_pa"),
    }


@pytest.mark.parametrize(
    "value",
    [1, -1.5, 0, True, None, "text", "x" * 256, [1, "a", None], {"nested": {"deep": [1]}}],
)
def test_free_sensor_types_accept_any_value(value: Any) -> None:
    payload = {"pm2_5_ugm3": value, "co2_ppm": 412, "temperature": 3}
    (reading,) = decode(generic(sensor_type="air_quality", payload=payload))
    assert reading.payload == payload
    assert reading.sensor_type == "air_quality"


def test_free_sensor_type_text_is_bounded() -> None:
    issue = only_issue(generic(sensor_type="notes", payload={"text": "x" * (MAX_TEXT + 1)}))
    assert issue == Issue(0, "payload.text", "text longer than 256 characters")


@pytest.mark.parametrize(
    "name", ["Temperature", "temperature-c", "1st", "_x", "", "a" * 65, "temp c", "ä"]
)
@pytest.mark.parametrize("sensor_type", ["air_quality", "climate"])
def test_field_names_are_lower_snake_case(name: str, sensor_type: str) -> None:
    issue = only_issue(generic(sensor_type=sensor_type, payload={name: 1}))
    assert issue == Issue(
        0, f"payload.{name[:64]}", "field names are lower-case snake case carrying the unit"
    )


def test_field_name_of_64_characters_is_fine() -> None:
    name = "a" * 64
    assert decode(generic(sensor_type="x", payload={name: 1}))[0].payload == {name: 1}


def test_empty_payload_is_refused() -> None:
    assert only_issue(generic(payload={})) == Issue(
        0, "payload", "empty: a reading has at least one field"
    )


def test_payload_field_count_is_bounded() -> None:
    ok = {f"f{n}": n for n in range(MAX_FIELDS)}
    assert decode(generic(sensor_type="x", payload=ok))[0].payload == ok
    too_many = {f"f{n}": n for n in range(MAX_FIELDS + 1)}
    assert only_issue(generic(sensor_type="x", payload=too_many)) == Issue(
        0, "payload", "65 fields; at most 64"
    )


@pytest.mark.parametrize("payload", [[1], "x", 1, True])
def test_payload_must_be_an_object(payload: Any) -> None:
    issue = only_issue(generic(payload=payload))
    assert (issue.index, issue.field) == (0, "payload")


# --------------------------------------------------------------------------------------------
# Batches: all-or-nothing, every invalid item named by index and field
# --------------------------------------------------------------------------------------------


def test_batch_with_items_1_and_3_bad_reports_exactly_those() -> None:
    items = [GENERIC, generic(node_id="BAD"), LOGEXP, fleet(cps=_DROP), FLEET]
    exc = violation(body(items))
    assert where(exc.issues) == {(1, "node_id"), (3, "cps")}
    assert exc.message == "2 invalid readings; nothing was stored"


def test_batch_with_decoder_level_errors_reports_every_item() -> None:
    # Each of these fails in msgspec itself (the slow path), not only in normalise().
    items = [
        GENERIC,
        logexp(counts_per_second="1"),
        LOGEXP,
        {**FLEET, "bogus": 1},
        FLEET,
    ]
    found = issues(items)
    assert where(found) == {(1, "counts_per_second"), (3, "bogus")}


def test_batch_mixing_decoder_and_normaliser_errors() -> None:
    items = [
        generic(timestamp="2025-01-01T00:00:00"),  # decoder: naive
        generic(node_id="BAD"),  # normaliser
        GENERIC,
        fleet(cps=-1),  # decoder: minimum
        logexp(mode="medium"),  # normaliser
    ]
    found = issues(items)
    assert where(found) == {(0, "timestamp"), (1, "node_id"), (3, "cps"), (4, "mode")}
    assert [i.index for i in found] == sorted(i.index for i in found if i.index is not None)


def test_one_invalid_reading_summary_is_singular() -> None:
    exc = violation(body([GENERIC, generic(node_id="BAD")]))
    assert exc.message == "1 invalid reading; nothing was stored"


def test_single_object_issues_use_index_0() -> None:
    assert issues(generic(node_id="BAD"))[0].index == 0
    assert issues(generic(node_id=5))[0].index == 0


def test_unknown_top_level_field_is_named() -> None:
    assert only_issue(generic(temperature_c=21.5)) == Issue(
        0, "temperature_c", "unknown field (a generic reading carries its values in payload)"
    )


def test_unknown_top_level_field_name_is_truncated() -> None:
    name = "x" * 100
    assert only_issue(generic(**{name: 1})).field == "x" * 64


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------


def test_batch_at_the_limit_is_accepted() -> None:
    assert len(decode([GENERIC] * 3, max_batch=3)) == 3


@pytest.mark.parametrize(
    "items",
    [
        [GENERIC] * 4,  # fast path
        [GENERIC, GENERIC, generic(node_id=5), GENERIC],  # slow path (decoder error)
        [{}] * 4,  # fast path, items that would each be invalid
    ],
)
@pytest.mark.parametrize("wrap", [False, True])
def test_batch_over_the_limit_is_too_large(items: list[Any], wrap: bool) -> None:
    exc = violation(body({"readings": items} if wrap else items), max_batch=3)
    assert isinstance(exc, BatchTooLarge)
    assert (exc.count, exc.limit) == (4, 3)
    assert exc.issues == [Issue(None, "", "4 readings in one batch; at most 3 are accepted")]


def test_default_batch_limit_is_10000() -> None:
    assert MAX_BATCH == 10_000
    assert len(decode_readings(b"[" + b",".join([b"{}"] * 0) + b"]")) == 0
    raw = b"[" + b",".join([b"{}"] * (MAX_BATCH + 1)) + b"]"
    exc = violation(raw)
    assert isinstance(exc, BatchTooLarge)
    assert exc.count == MAX_BATCH + 1


def test_deeply_nested_body_is_a_schema_violation_not_a_recursion_error() -> None:
    depth = 100_000
    for raw in (
        b"[" * depth + b"]" * depth,
        b"[" * depth,
        body([GENERIC])[:-1] + b"," + b"[" * depth + b"]" * depth + b"]",
        b'{"node_id": "n", "sensor_type": "x", "timestamp": "2025-01-01T00:00:00Z", '
        b'"payload": {"a": ' + b"[" * depth + b"]" * depth + b"}}",
    ):
        exc = violation(raw)
        assert exc.issues == [Issue(None, "", "the body is nested too deeply")]


def test_moderately_nested_free_payload_is_fine() -> None:
    value: Any = 1
    for _ in range(50):
        value = [value]
    assert decode(generic(sensor_type="x", payload={"a": value}))[0].payload == {"a": value}


def test_reading_is_frozen() -> None:
    (reading,) = decode(GENERIC)
    with pytest.raises(AttributeError):
        reading.node_id = "other"  # type: ignore[misc]


def test_wire_reading_refuses_unknown_fields() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"x": 1}', type=WireReading)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

WIRE_FIELDS = [*WireReading.__struct_fields__, "payload", "temperature_c"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["2025-01-01T00:00:00Z", "2025-01-01T00:00:00", "slow", "FAST", "geiger", "climate"]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(WIRE_FIELDS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=15,
)


def _outcome(raw: bytes) -> list[Reading] | SchemaViolation:
    """Decode ``raw``: a list of readings or a SchemaViolation (BatchTooLarge is one), nothing else."""
    outcome: list[Reading] | SchemaViolation
    try:
        outcome = decode_readings(raw, default_node_id="own", max_batch=4)
    except SchemaViolation as exc:
        outcome = exc
    if isinstance(outcome, SchemaViolation):
        assert outcome.issues
        assert all(isinstance(i, Issue) for i in outcome.issues)
    else:
        assert isinstance(outcome, list)
        assert all(isinstance(r, Reading) for r in outcome)
    return outcome


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_violate_the_schema(raw: bytes) -> None:
    _outcome(raw)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_decodes_or_violates_the_schema(value: Any) -> None:
    outcome = _outcome(json.dumps(value).encode())
    if isinstance(outcome, SchemaViolation) and not isinstance(outcome, BatchTooLarge):
        n = len(value) if isinstance(value, list) else None
        for issue in outcome.issues:
            if issue.index is not None and n is not None:
                assert 0 <= issue.index < n


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.integers(min_value=0, max_value=300))
def test_truncated_json_decodes_or_violates_the_schema(value: Any, cut: int) -> None:
    # "[1, 2" fails validation at 1 before the decoder sees that the body is cut short
    _outcome(json.dumps(value).encode()[:cut])


# ---- generators of valid readings of each shape, with the Reading each must give ------------


def _word(first: str, rest: str, max_size: int) -> st.SearchStrategy[str]:
    """Faster than ``st.from_regex`` for ``[first][rest]{0,max_size}``."""
    return st.builds(str.__add__, st.sampled_from(first), st.text(alphabet=rest, max_size=max_size))


LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"
ALNUM = LOWER_DIGITS + LOWER_DIGITS[:26].upper()
idents = _word(LOWER_DIGITS, LOWER_DIGITS + "._-", 20)
field_names = _word(LOWER_DIGITS[:26], LOWER_DIGITS + "_", 20)
sensor_ids = _word(ALNUM, ALNUM + "._@:/-", 30)
reading_ids = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=1, max_size=40)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
aware = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
    offsets,
)
non_negative = st.floats(min_value=0, max_value=1e12, allow_nan=False) | st.integers(0, 10**12)
case_variants = st.sampled_from(["SLOW", "FAST", "INST"]).flatmap(
    lambda m: st.lists(st.booleans(), min_size=len(m), max_size=len(m)).map(
        lambda ups: "".join(c if up else c.lower() for c, up in zip(m, ups, strict=True))
    )
)
short_text = st.text(max_size=MAX_TEXT).filter(lambda s: len(s) <= MAX_TEXT)


@st.composite
def common(draw: st.DrawFn, node_key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys any shape may carry: (wire item, Reading keyword arguments)."""
    wire: dict[str, Any] = {}
    want: dict[str, Any] = {"node_id": "own", "reading_id": None}
    if node_key is not None and draw(st.booleans()):
        want["node_id"] = wire[node_key] = draw(idents)
    if draw(st.booleans()):
        want["sensor_id"] = wire["sensor_id"] = draw(sensor_ids)
    if draw(st.booleans()):
        want["reading_id"] = wire["reading_id"] = draw(reading_ids)
    return wire, want


def _timestamp(draw: st.DrawFn, wire: dict[str, Any], want: dict[str, Any], need: bool) -> None:
    want["timestamp"] = None
    if need or draw(st.booleans()):
        when = draw(aware)
        wire["timestamp"] = when.isoformat()
        want["timestamp"] = when.astimezone(UTC)


def _value(draw: st.DrawFn, spec_kind: FieldKind, minimum: float | None, name: str) -> Any:
    if spec_kind is FieldKind.TEXT:
        return draw(case_variants) if name == "mode" else draw(short_text)
    low = -1e12 if minimum is None else minimum
    return draw(
        st.floats(min_value=low, max_value=1e12, allow_nan=False)
        | st.integers(min_value=int(low) + 1, max_value=10**12)
    )


@st.composite
def generic_items(draw: st.DrawFn) -> tuple[dict[str, Any], Reading]:
    wire, want = draw(common(draw(st.sampled_from(["node_id", "device_id", None]))))
    sensor_type = draw(st.sampled_from([*VOCABULARY, "air_quality", "x", "door.contact"]))
    wire["sensor_type"] = want["sensor_type"] = sensor_type
    want.setdefault("sensor_id", sensor_type)
    vocab = VOCABULARY.get(sensor_type)
    payload: dict[str, Any]
    if vocab is None:
        payload = draw(st.dictionaries(field_names, json_scalars, min_size=1, max_size=8))
        payload = {
            k: v for k, v in payload.items() if not (isinstance(v, str) and len(v) > MAX_TEXT)
        } or {"n": 1}
        stored = payload
    else:
        names = draw(st.lists(st.sampled_from(sorted(vocab)), min_size=1, unique=True))
        payload = {n: _value(draw, vocab[n].kind, vocab[n].minimum, n) for n in names}
        stored = {k: (v.upper() if k == "mode" else v) for k, v in payload.items()}
    wire["payload"] = payload
    want["payload"] = stored
    _timestamp(draw, wire, want, need=True)
    return wire, Reading(**want)


@st.composite
def logexp_items(draw: st.DrawFn) -> tuple[dict[str, Any], Reading]:
    wire, want = draw(common("device_id"))
    cps, cpm = draw(st.integers(0, 10**9)), draw(st.integers(0, 10**9))
    dose = draw(st.floats(min_value=0, max_value=1e6, allow_nan=False))
    mode = draw(case_variants)
    wire |= {
        "counts_per_second": cps,
        "counts_per_minute": cpm,
        "microsieverts_per_hour": dose,
        "mode": mode,
    }
    if draw(st.booleans()):
        wire["sensor_type"] = "geiger"
    want |= {
        "sensor_type": "geiger",
        "payload": {"cps": cps, "cpm": cpm, "usv_per_hour": dose, "mode": mode.upper()},
    }
    want.setdefault("sensor_id", "geiger")
    _timestamp(draw, wire, want, need=False)
    return wire, Reading(**want)


@st.composite
def fleet_items(draw: st.DrawFn) -> tuple[dict[str, Any], Reading]:
    wire, want = draw(common("node_id"))
    payload: dict[str, Any] = {"cps": draw(non_negative), "cpm": draw(non_negative)}
    if draw(st.booleans()):
        payload["counts"] = draw(st.integers(0, 2**63))
    if draw(st.booleans()):
        payload["tube_type"] = draw(short_text)
    if draw(st.booleans()):
        payload["firmware_version"] = draw(short_text)
    wire |= payload
    want |= {"sensor_type": "geiger", "payload": payload}
    want.setdefault("sensor_id", "geiger")
    _timestamp(draw, wire, want, need=False)
    return wire, Reading(**want)


valid_items = generic_items() | logexp_items() | fleet_items()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(valid_items)
def test_valid_readings_round_trip(pair: tuple[dict[str, Any], Reading]) -> None:
    wire, expected = pair
    (got,) = decode(wire, default_node_id="own")
    assert got == expected
    assert got.timestamp is None or got.timestamp.tzinfo is UTC
    assert decode([wire], default_node_id="own") == [expected]
    assert decode({"readings": [wire]}, default_node_id="own") == [expected]


# ---- invalid items: every one of them, and only those, is reported ---------------------------

MUTATIONS: list[tuple[str, Any]] = [
    (
        "generic without timestamp",
        lambda w: {"node_id": "n", "sensor_type": "x", "payload": {"a": 1}},
    ),
    ("naive timestamp", lambda w: {**w, "timestamp": "2025-01-01T00:00:00"}),
    ("bad node id", lambda w: {**w, "node_id": "Bad Node", "device_id": "Bad Node"}),
    ("unknown top-level field", lambda w: {**w, "bogus_field": 1}),
    ("negative cps", lambda w: {**w, "cps": -1.0}),
    ("text count", lambda w: {**w, "counts_per_second": "12"}),
    ("mixed shapes", lambda w: {**w, "payload": {"x": 1}, "mode": "slow"}),
    ("not an object", lambda w: 42),
    ("bad reading id", lambda w: {**w, "reading_id": "has space"}),
    ("empty payload", lambda w: {**w, "payload": {}, "sensor_type": "x"}),
    ("overflowing timestamp", lambda w: {**w, "timestamp": "0001-01-01T00:00:00+01:00"}),
    ("nested readings", lambda w: {**w, "readings": []}),
]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(valid_items, st.none() | st.integers(0, len(MUTATIONS) - 1)),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_reported_indexes_are_exactly_the_invalid_items(
    batch: list[tuple[tuple[dict[str, Any], Reading], int | None]], wrap: bool
) -> None:
    items = [wire if m is None else MUTATIONS[m][1](wire) for (wire, _), m in batch]
    bad = {n for n, (_, m) in enumerate(batch) if m is not None}
    sent = {"readings": items} if wrap else items
    if not bad:
        assert decode(sent, default_node_id="own") == [want for (_, want), _ in batch]
        return
    found = issues(sent, default_node_id="own")
    assert {i.index for i in found} == bad
    assert [i.index for i in found] == sorted(i.index for i in found)  # type: ignore[type-var]
