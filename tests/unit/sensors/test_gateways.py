"""Unit tests of ``sensors.gateways``: govee2mqtt, OpenMQTTGateway and Theengs Gateway messages.

Topic and payload shapes follow what those gateways publish (govee2mqtt's topic code; the
OpenMQTTGateway/Theengs ``BTtoMQTT`` JSON); the values are worked out here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.sensors import (
    Availability,
    AvailabilityKind,
    DecodeError,
    GatewayReading,
    decode_gateway_message,
)
from beamwarden.sensors.gateways import fahrenheit_to_celsius

G2M = "gv2mqtt/sensor/sensor-1F80A4C138123456"
DEVICE = "ble:A4C138123456"
VENDOR = "govee:1F80A4C138123456"
OMG = "home/OMG_ESP32_BLE/BTtoMQTT/A4C138123456"
THEENGS = "home/TheengsGateway/BTtoMQTT/A4C138ABCDEF"


def js(**fields: object) -> bytes:
    return json.dumps(fields).encode()


# --- govee2mqtt -----------------------------------------------------------------------------------

G2M_CASES = [
    ("temperature-c", f"{G2M}-sensortemperature/state", b"21.50", False,
     GatewayReading(DEVICE, "govee2mqtt", temperature_c=21.5, vendor_id=VENDOR)),
    ("temperature-c-negative", f"{G2M}-sensortemperature/state", b"-5.30", False,
     GatewayReading(DEVICE, "govee2mqtt", temperature_c=-5.3, vendor_id=VENDOR)),
    # 70.70 °F = 21.5 °C
    ("temperature-f", f"{G2M}-sensortemperature/state", b"70.70", True,
     GatewayReading(DEVICE, "govee2mqtt", temperature_c=21.5, vendor_id=VENDOR)),
    # 14 °F = -10 °C
    ("temperature-f-negative", f"{G2M}-sensortemperature/state", b"14.00", True,
     GatewayReading(DEVICE, "govee2mqtt", temperature_c=-10.0, vendor_id=VENDOR)),
    # humidity is never converted
    ("humidity", f"{G2M}-sensorhumidity/state", b"44.20", True,
     GatewayReading(DEVICE, "govee2mqtt", humidity_pct=44.2, vendor_id=VENDOR)),
    ("lower-case-id", "gv2mqtt/sensor/sensor-1f80a4c138123456-sensorhumidity/state", b" 44.2\n", False,
     GatewayReading(DEVICE, "govee2mqtt", humidity_pct=44.2, vendor_id=VENDOR)),
    ("status-available", f"{G2M}-gv2mqtt-status/state", b"Available", False,
     Availability(AvailabilityKind.DEVICE, DEVICE, True, "Available", "govee2mqtt")),
    ("status-missing", f"{G2M}-gv2mqtt-status/state", b"Missing", False,
     Availability(AvailabilityKind.DEVICE, DEVICE, False, "Missing", "govee2mqtt")),
    ("status-unknown", f"{G2M}-gv2mqtt-status/state", b"Unknown", False,
     Availability(AvailabilityKind.DEVICE, DEVICE, None, "Unknown", "govee2mqtt")),
    ("bridge-online", "gv2mqtt/availability", b"online", False,
     Availability(AvailabilityKind.GATEWAY, "govee2mqtt", True, "online", "govee2mqtt")),
    ("bridge-offline", "gv2mqtt/availability", b"offline", False,
     Availability(AvailabilityKind.GATEWAY, "govee2mqtt", False, "offline", "govee2mqtt")),
    # an empty state: govee2mqtt has no value yet
    ("empty-state", f"{G2M}-sensortemperature/state", b"", False, None),
    # other entities of govee2mqtt are not readings
    ("other-instance", f"{G2M}-online/state", b"true", False, None),
    ("light", "gv2mqtt/light/1F80A4C138123456/state", b'{"state":"ON"}', False, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "payload", "fahrenheit", "expected"),
    [c[1:] for c in G2M_CASES],
    ids=[c[0] for c in G2M_CASES],
)
def test_govee2mqtt(
    topic: str, payload: bytes, fahrenheit: bool, expected: GatewayReading | Availability | None
) -> None:
    assert decode_gateway_message(topic, payload, fahrenheit=fahrenheit) == expected


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        (f"{G2M}-sensortemperature/state", b"warm", "is a number"),
        (f"{G2M}-sensortemperature/state", b"nan", "is a number"),
        (f"{G2M}-sensortemperature/state", b"1e3", "is a number"),
        (f"{G2M}-sensortemperature/state", b"-300.00", "cannot be right"),
        (f"{G2M}-sensorhumidity/state", b"120.00", "cannot be right"),
        (f"{G2M}-sensorhumidity/state", b"\xff\xfe", "not UTF-8"),
        (f"{G2M}-gv2mqtt-status/state", b"Sleeping", "Available, Missing or Unknown"),
        ("gv2mqtt/availability", b"maybe", "online or offline"),
    ],
)
def test_govee2mqtt_malformed(topic: str, payload: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        decode_gateway_message(topic, payload)


# --- OpenMQTTGateway / Theengs BTtoMQTT -----------------------------------------------------------

BT_CASES = [
    # already decoded by the gateway
    ("omg-decoded", OMG,
     js(id="A4:C1:38:12:34:56", name="GVH5075_3456", rssi=-70, brand="Govee", model="Thermo-Hygrometer",
        model_id="H5072/75", type="THB", tempc=21.3, tempf=70.34, hum=44.2, batt=100),
     GatewayReading(DEVICE, "OMG_ESP32_BLE", temperature_c=21.3, humidity_pct=44.2, battery_pct=100,
                    rssi_dbm=-70, model="H5072/75")),
    # raw manufacturer data, decoded here
    ("omg-raw-govee", OMG,
     js(id="A4:C1:38:12:34:56", mac_type=0, adv_type=0, name="GVH5075_3456",
        manufacturerdata="88ec0080d0cc5700", rssi=-81),
     GatewayReading(DEVICE, "OMG_ESP32_BLE", temperature_c=-5.3, humidity_pct=45.2, battery_pct=87,
                    rssi_dbm=-81, model="H5075")),
    # our decoding wins over the gateway's (a -(m/10000) decoder says -5.3452)
    ("raw-wins-over-wrong-decoding", OMG,
     js(id="A4:C1:38:12:34:56", name="GVH5075_3456", manufacturerdata="88ec0080d0cc5700",
        tempc=-5.3452, hum=45.2, batt=87, rssi=-81),
     GatewayReading(DEVICE, "OMG_ESP32_BLE", temperature_c=-5.3, humidity_pct=45.2, battery_pct=87,
                    rssi_dbm=-81, model="H5075")),
    # Theengs with °F only; the MAC from the topic
    ("theengs-fahrenheit-mac-from-topic", THEENGS,
     js(name="GVH5177_CDEF", tempf=14.0, hum=50, batt=64, rssi=-90),
     GatewayReading("ble:A4C138ABCDEF", "TheengsGateway", temperature_c=-10.0, humidity_pct=50.0,
                    battery_pct=64.0, rssi_dbm=-90)),
    # another brand's manufacturer data: the gateway's decoded fields are used
    ("other-brand-decoded", "home/gw1/BTtoMQTT/A4C1380A0B0C",
     js(id="A4:C1:38:0A:0B:0C", manufacturerdata="5b0501020304", model_id="LYWSD03MMC", tempc=19.5,
        hum=51, batt=88, time="2026-11-22T12:00:05+01:00"),
     GatewayReading("ble:A4C1380A0B0C", "gw1", temperature_c=19.5, humidity_pct=51.0, battery_pct=88.0,
                    device_time=datetime(2026, 11, 22, 12, 0, 5, tzinfo=timezone(timedelta(hours=1))),
                    model="LYWSD03MMC")),
    ("time-in-utc", "site/home/gw2/BTtoMQTT",
     js(id="a4-c1-38-0a-0b-0c", hum=51.5, time="2026-11-22T11:00:05Z"),
     GatewayReading("ble:A4C1380A0B0C", "gw2", humidity_pct=51.5,
                    device_time=datetime(2026, 11, 22, 11, 0, 5, tzinfo=UTC))),
    # a phone's advertisement carries no reading
    ("phone", OMG, js(id="5C:F9:38:01:02:03", manufacturerdata="4c0010050b1c8e1f2a", rssi=-60), None),
    ("unsupported-govee-model", OMG,
     js(id="A4:C1:38:12:34:56", name="GVH5106_4E05", manufacturerdata="010001010ed13298"),
     None),
    # gateway last will
    ("omg-lwt-online", "home/OMG_ESP32_BLE/LWT", b"online",
     Availability(AvailabilityKind.GATEWAY, "OMG_ESP32_BLE", True, "online", "OMG_ESP32_BLE")),
    ("theengs-lwt-offline", "home/TheengsGateway/LWT", b"Offline",
     Availability(AvailabilityKind.GATEWAY, "TheengsGateway", False, "Offline", "TheengsGateway")),
    # not ours
    ("system-topic", "home/OMG_ESP32_BLE/SYStoMQTT", js(uptime=1234), None),
    ("unrelated", "zigbee2mqtt/kitchen", js(temperature=21), None),
    ("lwt-without-gateway", "/LWT", b"online", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "payload", "expected"), [c[1:] for c in BT_CASES], ids=[c[0] for c in BT_CASES]
)
def test_bt_to_mqtt(
    topic: str, payload: bytes, expected: GatewayReading | Availability | None
) -> None:
    assert decode_gateway_message(topic, payload) == expected


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        (OMG, b"{not json", "not JSON"),
        (OMG, b"[1, 2]", "is a JSON object"),
        (OMG, b"[" * 100_000, "not JSON"),
        (OMG, js(id="A4:C1:38:12:34:56", tempc="21.3"), "tempc is a number"),
        (OMG, js(id="A4:C1:38:12:34:56", tempc=True), "tempc is a number"),
        (OMG, b'{"id": "A4:C1:38:12:34:56", "hum": NaN}', "not a finite number"),
        (OMG, b'{"id": "A4:C1:38:12:34:56", "hum": 1e999}', "not a finite number"),
        (OMG, b'{"id": "A4:C1:38:12:34:56", "hum": 1' + b"0" * 400 + b"}", "too large"),
        (OMG, js(id="A4:C1:38:12:34:56", hum=101), "cannot be right"),
        (OMG, js(id="A4:C1:38:12:34:56", batt=-1), "cannot be right"),
        (OMG, js(id="A4:C1:38:12:34:56", tempc=-274), "cannot be right"),
        (
            "home/gw/BTtoMQTT",
            js(id="61DE521B-F0BF-9F44-64D4-75BBE1738105", tempc=21.0),
            "not a MAC",
        ),
        ("home/gw/BTtoMQTT", js(tempc=21.0), "not a MAC"),
        ("BTtoMQTT/A4C138123456", js(tempc=21.0), "names its gateway first"),
        (OMG, js(id="A4:C1:38:12:34:56", tempc=21.0, time=1764000000), "ISO-8601 string"),
        (OMG, js(id="A4:C1:38:12:34:56", tempc=21.0, time="yesterday"), "not ISO-8601"),
        (OMG, js(id="A4:C1:38:12:34:56", tempc=21.0, time="2026-11-22T12:00:00"), "no zone"),
        (OMG, js(id="A4:C1:38:12:34:56", manufacturerdata="88ec00zz"), "not hex"),
        # a Govee thermometer flagging an error
        (OMG, js(id="A4:C1:38:12:34:56", manufacturerdata="88ec000341c2e400"), "reports an error"),
        ("home/gw/LWT", b"gone", "online or offline"),
    ],
)
def test_bt_to_mqtt_malformed(topic: str, payload: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        decode_gateway_message(topic, payload)


def test_payload_in_the_protocol_vocabulary() -> None:
    full = GatewayReading(
        DEVICE, "gw", temperature_c=-5.3, humidity_pct=45.2, battery_pct=87, rssi_dbm=-81
    )
    assert full.payload() == {
        "temperature_c": -5.3,
        "humidity_pct": 45.2,
        "battery_pct": 87,
        "rssi_dbm": -81,
    }
    assert GatewayReading(DEVICE, "gw").payload() == {}
    assert full.sensor_type == "climate"


def test_fahrenheit_to_celsius() -> None:
    assert [fahrenheit_to_celsius(f) for f in (32.0, 212.0, -40.0, 70.7)] == [
        0.0,
        100.0,
        -40.0,
        21.5,
    ]


# --- properties -----------------------------------------------------------------------------------

topics = st.sampled_from(
    [
        f"{G2M}-sensortemperature/state",
        f"{G2M}-sensorhumidity/state",
        f"{G2M}-gv2mqtt-status/state",
        "gv2mqtt/availability",
        OMG,
        "home/gw/BTtoMQTT",
        "BTtoMQTT",
        "home/gw/LWT",
        "LWT",
    ]
) | st.text(max_size=40)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
bt_documents = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["A4:C1:38:12:34:56", "nope"]) | st.text(max_size=20),
        "name": st.sampled_from(["GVH5075_2762", "GV5179_6319"]) | json_values,
        "manufacturerdata": st.binary(max_size=12).map(bytes.hex) | json_values,
        "tempc": json_values,
        "tempf": json_values,
        "hum": json_values,
        "batt": json_values,
        "rssi": json_values,
        "time": st.datetimes(timezones=st.timezones()).map(datetime.isoformat) | json_values,
    },
)


def _accepts(topic: str, payload: bytes, fahrenheit: bool) -> None:
    try:
        out = decode_gateway_message(topic, payload, fahrenheit=fahrenheit)
    except DecodeError:
        return
    assert out is None or isinstance(out, GatewayReading | Availability)


@given(topics, st.binary(max_size=60), st.booleans())
def test_any_message_gives_a_result_or_decode_error(
    topic: str, payload: bytes, fahrenheit: bool
) -> None:
    _accepts(topic, payload, fahrenheit)


@given(st.sampled_from([OMG, "home/gw/BTtoMQTT"]), bt_documents)
def test_any_bt_to_mqtt_document_gives_a_result_or_decode_error(
    topic: str, doc: dict[str, object]
) -> None:
    _accepts(topic, json.dumps(doc).encode(), False)
