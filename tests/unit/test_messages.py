"""Unit tests of ``protocol.messages``: registration, telemetry and the answers (pydantic)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from beamwarden.protocol import (
    ErrorEnvelope,
    Event,
    IngestResult,
    InstanceState,
    NodeRecord,
    NodeStatus,
    Page,
    Registered,
    Registration,
    SeriesBucket,
    StoredReading,
    Telemetry,
)

REGISTRATION: dict[str, Any] = {
    "node_id": "beamrider-0001",
    "role": "pi-log",
    "hostname": "beamrider-0001.local",
    "ip_address": "192.168.1.20",
    "software_version": "2.3.1",
    "tags": {"site": "lab", "rack": "r1"},
}
TELEMETRY: dict[str, Any] = {
    "node_id": "beamrider-0001",
    "role": "pi-log",
    "timestamp": "2025-03-14T14:26:53Z",
    "uptime_seconds": 3600.5,
    "software_version": "2.3.1",
    "ip_address": "192.168.1.20",
}


def registration(**changes: Any) -> Registration:
    return Registration.model_validate({**REGISTRATION, **changes})


def telemetry(**changes: Any) -> Telemetry:
    return Telemetry.model_validate({**TELEMETRY, **changes})


def errors_of(model: type[Registration | Telemetry], data: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [e["loc"] for e in info.value.errors()]


def refused(model: type[Registration | Telemetry], base: dict[str, Any], **changes: Any) -> None:
    """The change is refused, and the error names the changed field."""
    locs = errors_of(model, {**base, **changes})
    assert locs
    assert {loc[0] for loc in locs} == set(changes)


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


def test_registration_valid() -> None:
    reg = registration()
    assert reg.model_dump() == REGISTRATION


def test_registration_from_json_text() -> None:
    reg = Registration.model_validate_json(json.dumps(REGISTRATION))
    assert reg == registration()


def test_registration_tags_default_to_empty() -> None:
    data = {k: v for k, v in REGISTRATION.items() if k != "tags"}
    assert Registration.model_validate(data).tags == {}


@pytest.mark.parametrize("field", ["node_id", "role", "hostname", "ip_address", "software_version"])
def test_registration_required_fields(field: str) -> None:
    data = {k: v for k, v in REGISTRATION.items() if k != field}
    assert errors_of(Registration, data) == [(field,)]


@pytest.mark.parametrize("node_id", ["a", "0", "a" * 64, "beamrider-0001", "n.1_x-y", "9"])
def test_node_id_accepted(node_id: str) -> None:
    assert registration(node_id=node_id).node_id == node_id
    assert telemetry(node_id=node_id).node_id == node_id


@pytest.mark.parametrize(
    "node_id",
    [
        "",
        "a" * 65,
        "Beamrider",
        "beamrider-0001\n",
        "\nbeamrider",
        " beamrider",
        "beamrider ",
        "-lead",
        ".lead",
        "_lead",
        "bad/slash",
        "ümlaut",
        5,
        None,
    ],
)
def test_node_id_refused(node_id: Any) -> None:
    refused(Registration, REGISTRATION, node_id=node_id)
    refused(Telemetry, TELEMETRY, node_id=node_id)


@pytest.mark.parametrize("role", ["pi-log", "logexp", "beamwarden", "mqtt-bridge", "custom.role"])
def test_any_role_of_the_alphabet_is_stored(role: str) -> None:
    assert registration(role=role).role == role


@pytest.mark.parametrize("role", ["", "Pi-Log", "pi log", "a" * 65, "pi-log\n"])
def test_role_refused(role: str) -> None:
    refused(Registration, REGISTRATION, role=role)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("192.168.1.20", "192.168.1.20"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("::1", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::ffff:192.168.1.20", "::ffff:c0a8:114"),
    ],
)
def test_ip_address_accepted_and_stored_as_text(sent: str, stored: str) -> None:
    for msg in (registration(ip_address=sent), telemetry(ip_address=sent)):
        assert msg.ip_address == stored
        value: object = msg.ip_address  # annotated as an address, stored as text
        assert type(value) is str
        assert msg.model_dump()["ip_address"] == stored
        assert json.loads(msg.model_dump_json())["ip_address"] == stored


@pytest.mark.parametrize(
    "ip",
    [
        "",
        "not-an-ip",
        "256.1.1.1",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.4/24",
        " 1.2.3.4",
        "1.2.3.4\n",
        "::g",
        "localhost",
        1,
        3232235777,
        1.5,
        True,
        None,
        ["1.2.3.4"],
    ],
)
def test_ip_address_garbage_refused(ip: Any) -> None:
    refused(Registration, REGISTRATION, ip_address=ip)
    refused(Telemetry, TELEMETRY, ip_address=ip)


def test_ip_address_number_refused_from_json_too() -> None:
    raw = json.dumps({**REGISTRATION, "ip_address": 16777343})
    with pytest.raises(ValidationError):
        Registration.model_validate_json(raw)


@pytest.mark.parametrize(
    ("field", "ok", "too_long"),
    [("hostname", 253, 254), ("software_version", 64, 65)],
)
def test_text_lengths(field: str, ok: int, too_long: int) -> None:
    assert len(getattr(registration(**{field: "h" * ok}), field)) == ok
    refused(Registration, REGISTRATION, **{field: "h" * too_long})
    refused(Registration, REGISTRATION, **{field: ""})


def test_extra_fields_refused() -> None:
    refused(Registration, REGISTRATION, display_name="Lab counter")
    refused(Telemetry, TELEMETRY, temperature=3)


def test_registration_is_frozen() -> None:
    reg = registration()
    with pytest.raises(ValidationError):
        reg.node_id = "other"


# ---- tags -----------------------------------------------------------------------------------


def test_tags_limits_accepted() -> None:
    tags = {f"k{n}": "v" * 256 for n in range(64)}
    assert registration(tags=tags).tags == tags
    assert telemetry(tags=tags).tags == tags
    key = "K" * 64
    assert registration(tags={key: ""}).tags == {key: ""}
    assert registration(tags={"Site_1.a:b/c-d": "x"}).tags == {"Site_1.a:b/c-d": "x"}


@pytest.mark.parametrize(
    "tags",
    [
        {f"k{n}": "v" for n in range(65)},
        {"": "v"},
        {"k" * 65: "v"},
        {"has space": "v"},
        {"k\n": "v"},
        {"ké": "v"},
        {"k": "v" * 257},
        {"k": 1},
        {"k": None},
        ["k"],
    ],
)
def test_tags_refused(tags: Any) -> None:
    refused(Registration, REGISTRATION, tags=tags)
    refused(Telemetry, TELEMETRY, tags=tags)


# --------------------------------------------------------------------------------------------
# Telemetry
# --------------------------------------------------------------------------------------------


def test_telemetry_minimal_gets_defaults() -> None:
    msg = telemetry()
    assert msg.timestamp == datetime(2025, 3, 14, 14, 26, 53, tzinfo=UTC)
    assert msg.interval_seconds == 30
    assert msg.protocol_version is None
    assert msg.instance_id is None
    assert msg.state is None
    assert msg.metrics == {}
    assert msg.tags == {}


def test_telemetry_full() -> None:
    msg = telemetry(
        protocol_version="1.0",
        interval_seconds=15,
        instance_id="7f3c9a",
        state="active",
        metrics={"cpu_percent": 12.5, "queue_depth": 3, "wifi_ok": True},
        tags={"site": "lab"},
    )
    assert msg.state is InstanceState.ACTIVE
    assert msg.metrics == {"cpu_percent": 12.5, "queue_depth": 3.0, "wifi_ok": True}
    assert msg.metrics["wifi_ok"] is True
    assert msg.interval_seconds == 15


def test_telemetry_from_json_text() -> None:
    raw = json.dumps({**TELEMETRY, "metrics": {"a": 1, "b": False}, "interval_seconds": 2.5})
    msg = Telemetry.model_validate_json(raw)
    assert msg.metrics == {"a": 1.0, "b": False}
    assert msg.interval_seconds == 2.5


@pytest.mark.parametrize(
    "field", ["node_id", "role", "timestamp", "uptime_seconds", "software_version", "ip_address"]
)
def test_telemetry_required_fields(field: str) -> None:
    data = {k: v for k, v in TELEMETRY.items() if k != field}
    assert errors_of(Telemetry, data) == [(field,)]


@pytest.mark.parametrize(
    ("sent", "instant"),
    [
        ("2025-03-14T14:26:53Z", datetime(2025, 3, 14, 14, 26, 53, tzinfo=UTC)),
        ("2025-03-14T15:26:53+01:00", datetime(2025, 3, 14, 14, 26, 53, tzinfo=UTC)),
        ("2025-03-14T14:26:53.25-00:30", datetime(2025, 3, 14, 14, 56, 53, 250000, tzinfo=UTC)),
        (
            datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2025, 3, 14, 14, 26, 53, tzinfo=UTC),
        ),
    ],
)
def test_telemetry_timestamp_with_a_zone(sent: Any, instant: datetime) -> None:
    assert telemetry(timestamp=sent).timestamp == instant


@pytest.mark.parametrize(
    "sent",
    [
        "2025-03-14T14:26:53",
        datetime(2025, 3, 14, 14, 26, 53),
        "2025-03-14",
        "yesterday",
        "",
        1741962413,  # Unix seconds are not ISO-8601
        1741962413.5,
        "1741962413",
        True,
        None,
    ],
)
def test_telemetry_timestamp_refused(sent: Any) -> None:
    refused(Telemetry, TELEMETRY, timestamp=sent)


def test_telemetry_unix_timestamp_refused_from_json_too() -> None:
    with pytest.raises(ValidationError):
        Telemetry.model_validate_json(json.dumps({**TELEMETRY, "timestamp": 1741962413}))


@pytest.mark.parametrize("value", [1, 1.0, 30, 86_400, 86_399.999, 2.5])
def test_interval_bounds_accepted(value: float) -> None:
    assert telemetry(interval_seconds=value).interval_seconds == value


@pytest.mark.parametrize(
    "value", [0, 0.999, -30, 86_400.001, 86_401, math.inf, math.nan, "30", True, None]
)
def test_interval_bounds_refused(value: Any) -> None:
    refused(Telemetry, TELEMETRY, interval_seconds=value)


@pytest.mark.parametrize("value", [0, 0.0, 1, 1e9])
def test_uptime_accepted(value: float) -> None:
    assert telemetry(uptime_seconds=value).uptime_seconds == value


@pytest.mark.parametrize("value", [-1, -0.001, math.inf, math.nan, "3600", True, None])
def test_uptime_refused(value: Any) -> None:
    refused(Telemetry, TELEMETRY, uptime_seconds=value)


@pytest.mark.parametrize("state", list(InstanceState))
def test_every_instance_state_accepted(state: InstanceState) -> None:
    assert telemetry(state=state.value).state is state


@pytest.mark.parametrize("state", ["running", "ACTIVE", "", 1])
def test_unknown_state_refused(state: Any) -> None:
    refused(Telemetry, TELEMETRY, state=state)


def test_protocol_version_is_text_of_at_most_16() -> None:
    assert telemetry(protocol_version="x" * 16).protocol_version == "x" * 16
    refused(Telemetry, TELEMETRY, protocol_version="x" * 17)


def test_instance_id_length() -> None:
    assert telemetry(instance_id="i" * 64).instance_id == "i" * 64
    refused(Telemetry, TELEMETRY, instance_id="i" * 65)
    refused(Telemetry, TELEMETRY, instance_id="")


# ---- metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [(0, 0.0), (-3, -3.0), (1.5, 1.5), (True, True), (False, False), (2**70, float(2**70))],
)
def test_metric_number_or_bool(value: Any, stored: Any) -> None:
    got = telemetry(metrics={"m": value}).metrics["m"]
    assert got == stored
    assert type(got) is type(stored)


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, "1.5", "true", "", None, [1], {"a": 1}]
)
def test_metric_refused(value: Any) -> None:
    refused(Telemetry, TELEMETRY, metrics={"m": value})


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", '"1.5"', '"true"'])
def test_metric_refused_from_json_text(literal: str) -> None:
    raw = json.dumps(TELEMETRY)[:-1] + f', "metrics": {{"m": {literal}}}}}'
    with pytest.raises(ValidationError):
        Telemetry.model_validate_json(raw)


def test_metric_count_limit() -> None:
    ok = {f"m{n}": n for n in range(256)}
    assert len(telemetry(metrics=ok).metrics) == 256
    refused(Telemetry, TELEMETRY, metrics={f"m{n}": n for n in range(257)})


@pytest.mark.parametrize("name", ["", "Cpu", "1st", "cpu-load", "cpu load", "m" * 65, "_m"])
def test_metric_name_refused(name: str) -> None:
    refused(Telemetry, TELEMETRY, metrics={name: 1})


def test_metric_name_of_64_accepted() -> None:
    assert telemetry(metrics={"m" * 64: 1}).metrics == {"m" * 64: 1.0}


def test_telemetry_dumps_to_json_without_warnings() -> None:
    msg = telemetry(metrics={"a": 1, "b": True}, state="idle")
    again = Telemetry.model_validate_json(msg.model_dump_json())
    assert again == msg


def test_json_schema_keeps_the_wire_types() -> None:
    props = Telemetry.model_json_schema()["properties"]
    assert props["timestamp"] == {"format": "date-time", "title": "Timestamp", "type": "string"}
    assert props["ip_address"]["anyOf"] == [
        {"format": "ipv4", "type": "string"},
        {"format": "ipv6", "type": "string"},
    ]
    assert props["metrics"]["patternProperties"] == {
        "^[a-z][a-z0-9_]*$": {"anyOf": [{"type": "number"}, {"type": "boolean"}]}
    }
    assert props["uptime_seconds"] == {"minimum": 0, "title": "Uptime Seconds", "type": "number"}


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------

NOW = datetime(2025, 3, 14, 14, 26, 53, tzinfo=UTC)


def test_ingest_result() -> None:
    assert IngestResult(accepted=3, duplicates=1).model_dump() == {"accepted": 3, "duplicates": 1}


def test_error_envelope_shape() -> None:
    env = ErrorEnvelope.model_validate(
        {
            "error": {
                "code": "schema_violation",
                "message": "1 invalid reading; nothing was stored",
                "details": [{"index": 1, "field": "node_id", "message": "required"}],
                "request_id": "req-1",
            }
        }
    )
    assert env.model_dump(exclude_none=True) == {
        "error": {
            "code": "schema_violation",
            "message": "1 invalid reading; nothing was stored",
            "details": [{"index": 1, "field": "node_id", "message": "required"}],
            "request_id": "req-1",
        }
    }
    bare = ErrorEnvelope.model_validate(
        {"error": {"code": "not_found", "message": "no such node", "request_id": "r"}}
    )
    assert bare.error.details == []


def test_page_is_generic() -> None:
    page = Page[int](items=[1, 2])
    assert page.model_dump() == {"items": [1, 2], "next_cursor": None}
    with pytest.raises(ValidationError):
        Page[int].model_validate({"items": ["x"]})


def test_node_record_and_registered() -> None:
    record = NodeRecord(
        node_id="n1", role="pi-log", status=NodeStatus.ONLINE, created_at=NOW, interval_seconds=30
    )
    assert record.status is NodeStatus.ONLINE
    assert record.operator_tags == {}
    assert record.reported_tags == {}
    assert record.enrolment_open is False
    registered = Registered(**record.model_dump(), token="secret")
    assert registered.token == "secret"
    assert Registered(**record.model_dump()).token is None


def test_stored_reading_defaults() -> None:
    stored = StoredReading(
        node_id="n1",
        sensor_id="geiger",
        sensor_type="geiger",
        timestamp=NOW,
        received_at=NOW,
        payload={"cps": 1},
    )
    assert (stored.timestamp_source, stored.timestamp_suspect, stored.source) == (
        "node",
        False,
        None,
    )


def test_series_bucket_and_event() -> None:
    bucket = SeriesBucket(t=NOW, avg=1.5, count=2)
    assert bucket.model_dump(exclude_none=True) == {"t": NOW, "avg": 1.5, "count": 2}
    event = Event(id=1, ts=NOW, kind="node.registered", message="registered")
    assert event.data == {}
    assert event.node_id is None
