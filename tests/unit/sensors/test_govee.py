"""Unit tests of ``sensors.govee``: one test per fixture, asserting the whole result.

Captures (manufacturer data as a gateway publishes it: the company id little-endian first) come
from the public test captures of the Bluetooth-Devices govee-ble project; the expected values are
worked out here from the layouts. The negative-temperature and error fixtures are built from the
formulas (noted beside each), since the captures hold few.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.sensors import DecodeError, GoveeReading, UnsupportedPayload, decode_govee
from beamwarden.sensors.govee import MODELS, model_in_name

IBEACON = "4c000215" + b"INTELLI_ROCKS_HW".hex() + "5075f2ff0c"  # appended by some BLE stacks
FAMILY_0001 = "H5100/H5101/H5102/H5103/H5104/H5105/H5110/H5174/H5177/H5179"

FIXTURES = [
    # --- separate little-endian fields -----------------------------------------------------------
    # 0x0ABA = 2746 → 27.46 °C, 0x0FF9 = 4089 → 40.89 %, 0x63 = 99 %; no name: the family
    (
        "h5051-capture",
        "88ec00ba0af90f63020101",
        "",
        GoveeReading("H5051/H5052/H5071", 27.46, 40.89, 99),
    ),
    (
        "h5052-capture",
        "88ec001c01a7143b000002",
        "Govee_H5052_E81B",
        GoveeReading("H5052", 2.84, 52.87, 59),
    ),
    (
        "h5071-capture",
        "88ec00210ab61218c80001",
        "Govee_H5071_FD12",
        GoveeReading("H5071", 25.93, 47.9, 24),
    ),
    (
        "h5074-capture",
        "88ec00e609bc126402",
        "Govee_H5074_5FF4",
        GoveeReading("H5074", 25.34, 47.96, 100),
    ),
    # int16 -1234 = 0xFB2E → -12.34 °C; 5678 = 0x162E → 56.78 %; 0x5A = 90 %
    (
        "h5074-negative",
        "88ec002efb2e165a02",
        "Govee_H5074_5FF4",
        GoveeReading("H5074", -12.34, 56.78, 90),
    ),
    # int16 -321 = 0xFEBF → -3.21 °C; 7000 = 0x1B58 → 70.00 %; 75 %
    (
        "h5051-negative",
        "88ec00bffe581b4b020101",
        "",
        GoveeReading("H5051/H5052/H5071", -3.21, 70.0, 75),
    ),
    # H5179, first firmware: company 0x8801, ec 00 01 01, then 0x0A0A = 25.70 °C, 0x06A4 = 17.00 %
    (
        "h5179-fw1-capture",
        "0188ec0001010a0aa40664",
        "Govee_H5179_3CD5",
        GoveeReading("H5179", 25.7, 17.0, 100),
    ),
    # -705 = 0xFD3F → -7.05 °C; 3300 = 0x0CE4 → 33.00 %; 64 %; no name needed: the shape is its own
    ("h5179-fw1-negative", "0188ec0001013ffde40c40", "", GoveeReading("H5179", -7.05, 33.0, 64)),
    # --- packed 24-bit big-endian ----------------------------------------------------------------
    # 0x0341C2 = 213442 → 21.3 °C, 44.2 %, the iBeacon record glued on is dropped
    (
        "h5075-capture",
        "88ec000341c26400" + IBEACON,
        "GVH5075_2762",
        GoveeReading("H5075", 21.3, 44.2, 100),
    ),
    ("h5072-capture", "88ec00034db26400", "GVH5072_ABCD", GoveeReading("H5072", 21.6, 49.8, 100)),
    (
        "h5072-75-no-name",
        "88ec00034db26400",
        "Govee_ABCD",
        GoveeReading("H5072/H5075", 21.6, 49.8, 100),
    ),
    # 0x80D0CC: sign set, m = 53452 → -5.3 °C (not -5.3452 as -(m/10000) decoders say), 45.2 %, 87 %
    ("h5075-negative", "88ec0080d0cc5700", "GVH5075_2762", GoveeReading("H5075", -5.3, 45.2, 87)),
    # 0x80176F: m = 5999 → -0.5 °C, 99.9 %
    (
        "h5075-just-below-zero",
        "88ec0080176f6400",
        "GVH5075_2762",
        GoveeReading("H5075", -0.5, 99.9, 100),
    ),
    # 0x800123: m = 291 → -0.0 °C is 0.0 (no negative zero), 29.1 %
    ("h5075-minus-zero", "88ec008001236400", "GVH5075_2762", GoveeReading("H5075", 0.0, 29.1, 100)),
    # 0x861AFB: m = 400123 → -40.0 °C (the lowest accepted), 12.3 %
    ("h5075-minus-40", "88ec00861afb3200", "GVH5075_2762", GoveeReading("H5075", -40.0, 12.3, 50)),
    ("h5100-capture", "0100010103465464", "GVH5100_7738", GoveeReading("H5100", 21.4, 61.2, 100)),
    (
        "h5103-capture",
        "0100010103513e64" + IBEACON,
        "GVH5103_5A4E",
        GoveeReading("H5103", 21.7, 40.6, 100),
    ),
    # 0x02FFF2: m = 196594 → 19.6 °C, 59.4 %, 94 %
    ("h5104-formula", "0100010102fff25e", "GVH5104_311C", GoveeReading("H5104", 19.6, 59.4, 94)),
    (
        "h5105-capture",
        "01000101033aed64" + IBEACON,
        "GVH5105_7336",
        GoveeReading("H5105", 21.1, 69.3, 100),
    ),
    ("h5110-capture", "01000101038efe64", "GVH5110_2EC8", GoveeReading("H5110", 23.3, 21.4, 100)),
    (
        "h5177-capture",
        "01000101033626644c000215494e54454c4c495f524f434b535f48575177f2ffc2",
        "GVH5177_2EC8",
        GoveeReading("H5177", 21.0, 47.0, 100),
    ),
    # H5179, second firmware: company 0x0001, six bytes like the H5100 family
    (
        "h5179-fw2-capture",
        "0100010103b31464",
        "GV5179_6319",
        GoveeReading("H5179", 24.2, 45.2, 100),
    ),
    ("h5100-family-no-name", "01000101038efe64", "", GoveeReading(FAMILY_0001, 23.3, 21.4, 100)),
    # 0x82DCD1: m = 187601 → -18.7 °C, 60.1 %, 50 %
    ("h5174-negative", "0100010182dcd132", "GVH5174_1A2B", GoveeReading("H5174", -18.7, 60.1, 50)),
    # 0x00D679: m = 54905 → 5.4 °C, 90.5 %, 90 %
    ("h5101-formula", "0100010100d6795a", "GVH5101_0C0D", GoveeReading("H5101", 5.4, 90.5, 90)),
    # 0x01EF8D: m = 126861 → 12.6 °C, 86.1 %, 70 %
    ("h5102-formula", "0100010101ef8d46", "GVH5102_0C0D", GoveeReading("H5102", 12.6, 86.1, 70)),
    ("h5108-capture", "0100010103c730640000", "GV51085242", GoveeReading("H5108", 24.7, 60.0, 100)),
    # 0x802A30: m = 10800 → -1.0 °C, 80.0 %, 85 %
    ("h5108-negative", "01000101802a30550000", "GV51085242", GoveeReading("H5108", -1.0, 80.0, 85)),
    (
        "h5108-probe-capture",
        "01000101034648640000" + IBEACON,
        "GV51080C25",
        GoveeReading("H5108", 21.4, 60.0, 100),
    ),
]


@pytest.mark.parametrize(
    ("hex_data", "name", "expected"), [f[1:] for f in FIXTURES], ids=[f[0] for f in FIXTURES]
)
def test_fixture(hex_data: str, name: str, expected: GoveeReading) -> None:
    assert decode_govee(bytes.fromhex(hex_data), name=name or None) == expected


def test_payload_without_the_company_id_prefix() -> None:
    # what BlueZ/bleak hand over: {0xEC88: payload}
    assert decode_govee(bytes.fromhex("0080d0cc5700"), company_id=0xEC88) == GoveeReading(
        "H5072/H5075", -5.3, 45.2, 87
    )
    assert decode_govee(
        bytes.fromhex("010103b31464"), company_id=0x0001, name="GV5179_6319"
    ) == GoveeReading("H5179", 24.2, 45.2, 100)


def test_payload_in_the_protocol_vocabulary() -> None:
    reading = GoveeReading("H5075", -5.3, 45.2, 87)
    assert reading.payload() == {"temperature_c": -5.3, "humidity_pct": 45.2, "battery_pct": 87}
    assert reading.sensor_type == "climate"


ERRORS = [
    # the battery byte's top bit is the sensor's error flag (govee-ble capture: 0xE4)
    ("h5108-error-flag-capture", "0100010103c730e40000", "GV51085242", "reports an error"),
    ("h5075-error-flag", "88ec000341c2e400", "GVH5075_2762", "reports an error"),
    # 0x861E68: m = 401000 → -40.1 °C: below the range, an error
    ("h5075-below-minus-40", "88ec00861e683200", "GVH5075_2762", "outside"),
    # 10001 = 0x2711 → 100.01 °C
    ("h5074-above-100", "88ec00112710276402", "", "outside"),
    # humidity 100.01 % = 0x2711
    ("h5074-humidity-above-100", "88ec00e60911276402", "", "above 100"),
    # battery 101 %
    ("h5074-battery-above-100", "88ec00e609bc126502", "", "above 100"),
    ("too-short", "88", "", "2-byte company id"),
]


@pytest.mark.parametrize(
    ("hex_data", "name", "why"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_error(hex_data: str, name: str, why: str) -> None:
    with pytest.raises(DecodeError, match=why) as caught:
        decode_govee(bytes.fromhex(hex_data), name=name or None)
    assert not isinstance(caught.value, UnsupportedPayload)


UNSUPPORTED = [
    # H5178 (indoor/outdoor pair), 9 bytes under 0x0001: no supported model sends that
    ("h5178-capture", "0100010101002af7640003", "B51782BC8", "H5178 is not"),
    ("h5178-without-name", "0100010101002af7640003", "", "no Govee thermometer sends 9 bytes"),
    # H5106 (air quality) looks like the H5100 family (0x0001, 6 bytes): the name tells them apart
    ("h5106-capture", "010001010ed13298", "GVH5106_4E05", "H5106 is not"),
    ("h5074-named-but-6-bytes", "88ec000341c26400", "Govee_H5074_5FF4", "H5074 does not send 6"),
    # 0xEC88 with 8 bytes: a Govee company id, but no thermometer's length
    (
        "company-id-alone-is-not-enough",
        "88ec000341c264000000",
        "",
        "sends 8 bytes under company id 0xec88",
    ),
    # longer than an iBeacon record but not ending in one: nothing is cut
    ("long-without-ibeacon", "88ec" + "00" * 26, "", "sends 26 bytes"),
    (
        "apple-ibeacon",
        "4c000215494e54454c4c495f524f434b535f48575075f2ff0c",
        "",
        "company id 0x004c",
    ),
    ("wrong-prefix", "0100020103465464", "GVH5100_7738", "starts with 0101"),
]


@pytest.mark.parametrize(
    ("hex_data", "name", "why"), [u[1:] for u in UNSUPPORTED], ids=[u[0] for u in UNSUPPORTED]
)
def test_unsupported(hex_data: str, name: str, why: str) -> None:
    with pytest.raises(UnsupportedPayload, match=why):
        decode_govee(bytes.fromhex(hex_data), name=name or None)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("GVH5075_2762", "H5075"),
        ("Govee_H5074_5FF4", "H5074"),
        ("Govee_H5179_3CD5", "H5179"),
        ("GV5179_6319", "H5179"),
        ("GV51085242", "H5108"),
        ("B51782BC8", "H5178"),
        ("Govee_ABCD", None),
        ("", None),
        ("ihoment_H6199_C0DE", None),
    ],
)
def test_model_in_name(name: str, model: str | None) -> None:
    assert model_in_name(name) == model


def test_every_model_of_the_issue_is_in_the_table() -> None:
    wanted = {"H5051", "H5052", "H5071", "H5072", "H5074", "H5075", "H5108", "H5110", "H5174"}
    wanted |= {"H5177", "H5179"} | {f"H510{i}" for i in range(6)}
    assert set(MODELS) == wanted
    assert len(MODELS["H5179"]) == 2  # both firmwares


# --- properties -----------------------------------------------------------------------------------

names = st.sampled_from(["", "GVH5075_2762", "GV5179_6319", "GVH5106_4E05", "Govee_H5074_5FF4"])


@given(st.binary(max_size=40), names)
def test_any_bytes_give_a_reading_or_decode_error(data: bytes, name: str) -> None:
    try:
        reading = decode_govee(data, name=name or None)
    except DecodeError:
        return
    assert -40 <= reading.temperature_c <= 100
    assert 0 <= reading.humidity_pct <= 100
    assert 0 <= reading.battery_pct <= 100


@given(st.binary(max_size=12), st.integers(0, 0xFFFF), names)
def test_any_payload_and_company_give_a_reading_or_decode_error(
    data: bytes, company_id: int, name: str
) -> None:
    try:
        reading = decode_govee(data, company_id=company_id, name=name or None)
    except DecodeError:
        return
    assert isinstance(reading, GoveeReading)


@given(st.integers(-400, 1000), st.integers(0, 999), st.integers(0, 100))
def test_packed_values_round_trip(tenths: int, humidity: int, battery: int) -> None:
    value = abs(tenths) * 1000 + humidity | (0x800000 if tenths < 0 else 0)
    data = b"\x88\xec\x00" + value.to_bytes(3, "big") + bytes([battery, 0])
    assert decode_govee(data) == GoveeReading("H5072/H5075", tenths / 10, humidity / 10, battery)


@given(st.integers(-4000, 10000), st.integers(0, 10000), st.integers(0, 100))
def test_separate_values_round_trip(centi: int, humidity: int, battery: int) -> None:
    data = b"\x88\xec\x00" + struct.pack("<hHB", centi, humidity, battery) + b"\x02"
    assert decode_govee(data, name="Govee_H5074_5FF4") == GoveeReading(
        "H5074", centi / 100, humidity / 100, battery
    )
