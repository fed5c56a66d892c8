"""Unit tests of ``sensors.bme280``: the datasheet's integer compensation from register bytes.

Reference values: the worked example of the Bosch BMP280 datasheet (section 3.12; the BME280 uses
the same temperature and pressure formulas) and the datasheet's double-precision formulas
(BME280 datasheet section 8.1), written out below as an independent check.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamwarden.sensors import (
    Bme280Calibration,
    Bme280Raw,
    Bme280Reading,
    DecodeError,
    compensate_bme280,
    decode_bme280,
    parse_bme280_calibration,
    parse_bme280_raw,
)
from beamwarden.sensors.bme280 import (
    _div0,
    compensate_humidity,
    compensate_pressure,
    compensate_temperature,
)

# The datasheet example's T and P trimming values, with typical humidity values of a real chip.
EXAMPLE = Bme280Calibration(
    dig_T1=27504, dig_T2=26435, dig_T3=-1000,
    dig_P1=36477, dig_P2=-10685, dig_P3=3024, dig_P4=2855, dig_P5=140, dig_P6=-7,
    dig_P7=15500, dig_P8=-14600, dig_P9=6000,
    dig_H1=75, dig_H2=362, dig_H3=0, dig_H4=312, dig_H5=50, dig_H6=30,
)  # fmt: skip


def calibration_bytes(c: Bme280Calibration) -> tuple[bytes, bytes]:
    """The two register blocks a chip with calibration ``c`` holds."""
    tp = struct.pack(
        "<HhhHhhhhhhhhBB",
        c.dig_T1, c.dig_T2, c.dig_T3, c.dig_P1, c.dig_P2, c.dig_P3, c.dig_P4, c.dig_P5,
        c.dig_P6, c.dig_P7, c.dig_P8, c.dig_P9, 0x00, c.dig_H1,
    )  # fmt: skip
    e4, e6 = (c.dig_H4 >> 4) & 0xFF, (c.dig_H5 >> 4) & 0xFF
    e5 = (c.dig_H4 & 0x0F) | (c.dig_H5 & 0x0F) << 4
    h = struct.pack("<hBBBBb", c.dig_H2, c.dig_H3, e4, e5, e6, c.dig_H6)
    return tp, h


def data_bytes(adc_t: int, adc_p: int, adc_h: int) -> bytes:
    return bytes(
        [adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4,
         adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4,
         adc_h >> 8, adc_h & 0xFF]
    )  # fmt: skip


# --- the datasheet's double-precision formulas (reference only) ---------------------------------


def t_double(c: Bme280Calibration, adc_t: int) -> tuple[float, float]:
    var1 = (adc_t / 16384.0 - c.dig_T1 / 1024.0) * c.dig_T2
    var2 = (adc_t / 131072.0 - c.dig_T1 / 8192.0) ** 2 * c.dig_T3
    return (var1 + var2) / 5120.0, var1 + var2


def p_double(c: Bme280Calibration, adc_p: int, t_fine: float) -> float:
    var1 = t_fine / 2.0 - 64000.0
    var2 = var1 * var1 * c.dig_P6 / 32768.0
    var2 = var2 + var1 * c.dig_P5 * 2.0
    var2 = var2 / 4.0 + c.dig_P4 * 65536.0
    var1 = (c.dig_P3 * var1 * var1 / 524288.0 + c.dig_P2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * c.dig_P1
    p = 1048576.0 - adc_p
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = c.dig_P9 * p * p / 2147483648.0
    var2 = p * c.dig_P8 / 32768.0
    return p + (var1 + var2 + c.dig_P7) / 16.0


def h_double(c: Bme280Calibration, adc_h: int, t_fine: float) -> float:
    var_h = t_fine - 76800.0
    var_h = (adc_h - (c.dig_H4 * 64.0 + c.dig_H5 / 16384.0 * var_h)) * (
        c.dig_H2
        / 65536.0
        * (1.0 + c.dig_H6 / 67108864.0 * var_h * (1.0 + c.dig_H3 / 67108864.0 * var_h))
    )
    var_h = var_h * (1.0 - c.dig_H1 * var_h / 524288.0)
    return min(max(var_h, 0.0), 100.0)


# --- the worked example -------------------------------------------------------------------------


def test_datasheet_temperature_example() -> None:
    assert compensate_temperature(EXAMPLE, 519888) == (2508, 128422)  # 25.08 °C


def test_datasheet_pressure_example() -> None:
    # The datasheet's table prints 25767236 (100653.27 Pa); executing its published 64-bit
    # formula gives 25767233 (100653.25 Pa), 3/256 Pa less, as every faithful port finds.
    q24_8 = compensate_pressure(EXAMPLE, 415148, 128422)
    assert q24_8 == 25767233
    assert abs(q24_8 / 256 - 100653.27) < 0.05
    assert abs(q24_8 / 256 - p_double(EXAMPLE, 415148, 128422)) < 0.05


def test_humidity_agrees_with_the_double_formula() -> None:
    q22_10 = compensate_humidity(EXAMPLE, 30000, 128422)
    assert q22_10 == 56682
    assert abs(q22_10 / 1024 - h_double(EXAMPLE, 30000, 128422.0)) < 0.01


def test_whole_reading_from_register_bytes() -> None:
    tp, h = calibration_bytes(EXAMPLE)
    assert decode_bme280(tp, h, data_bytes(519888, 415148, 30000)) == Bme280Reading(
        temperature_c=25.08, pressure_pa=100653.25390625, humidity_pct=55.353515625
    )


# --- parsing the register blocks ----------------------------------------------------------------


def test_calibration_blocks_round_trip() -> None:
    tp, h = calibration_bytes(EXAMPLE)
    assert parse_bme280_calibration(tp, h) == EXAMPLE


def test_h4_and_h5_are_signed_12_bit_values_sharing_e5() -> None:
    # E4 = 0xFF, E5 = 0xB8, E6 = 0xFF: H4 = 0xFF8 → -8, H5 = 0xFFB → -5
    tp, _ = calibration_bytes(EXAMPLE)
    cal = parse_bme280_calibration(tp, bytes([0x6A, 0x01, 0x00, 0xFF, 0xB8, 0xFF, 0x1E]))
    assert (cal.dig_H2, cal.dig_H3, cal.dig_H4, cal.dig_H5, cal.dig_H6) == (362, 0, -8, -5, 30)


def test_humidity_block_as_the_chip_stores_it() -> None:
    # EXAMPLE's humidity values in 0xE1..0xE7: 6A 01 | 00 | 13 28 03 | 1E
    # → H2 0x016A = 362, H3 0, H4 0x13:8 = 312, H5 0x03:2 = 50, H6 30
    tp, _ = calibration_bytes(EXAMPLE)
    cal = parse_bme280_calibration(tp, bytes.fromhex("6a01001328031e"))
    assert cal == EXAMPLE


def test_data_block() -> None:
    assert parse_bme280_raw(bytes.fromhex("655b2c7eed006e6c")) == Bme280Raw(
        adc_T=0x7EED0, adc_P=0x655B2, adc_H=0x6E6C
    )


@pytest.mark.parametrize(
    ("tp", "h", "data", "why"),
    [
        (b"\x00" * 25, b"\x00" * 7, b"\x00" * 8, "0x88..0xA1 is 26 bytes, got 25"),
        (b"\x00" * 26, b"\x00" * 8, b"\x00" * 8, "0xE1..0xE7 is 7 bytes, got 8"),
        (b"\x00" * 26, b"\x00" * 7, b"\x00" * 3, "0xF7..0xFE is 8 bytes, got 3"),
    ],
)
def test_block_lengths(tp: bytes, h: bytes, data: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        decode_bme280(tp, h, data)


# --- skipped measurements and impossible results ------------------------------------------------


def test_skipped_pressure_and_humidity_are_none() -> None:
    reading = compensate_bme280(EXAMPLE, Bme280Raw(519888, 0x80000, 0x8000))
    assert reading == Bme280Reading(25.08, None, None)
    assert reading.payload() == {"temperature_c": 25.08}
    assert reading.sensor_type == "climate"


def test_payload_names_every_field() -> None:
    assert Bme280Reading(25.08, 100653.25, 55.35).payload() == {
        "temperature_c": 25.08,
        "pressure_pa": 100653.25,
        "humidity_pct": 55.35,
    }


@pytest.mark.parametrize(
    ("cal", "raw", "why"),
    [
        (EXAMPLE, Bme280Raw(0x80000, 415148, 30000), "no temperature measurement"),
        (EXAMPLE, Bme280Raw(1 << 20, 415148, 30000), "no temperature measurement"),
        (EXAMPLE, Bme280Raw(-1, 415148, 30000), "no temperature measurement"),
        (EXAMPLE, Bme280Raw(0, 415148, 30000), "outside what a BME280 measures"),
        (EXAMPLE, Bme280Raw(519888, 1 << 20, 30000), "adc_P is a 20-bit value"),
        (EXAMPLE, Bme280Raw(519888, 0, 30000), "outside what a BME280 measures"),
        (EXAMPLE, Bme280Raw(519888, 415148, 1 << 16), "adc_H is a 16-bit value"),
        (
            dataclasses.replace(EXAMPLE, dig_P1=0),
            Bme280Raw(519888, 415148, 30000),
            "dig_P1 is 0",
        ),
    ],
)
def test_impossible(cal: Bme280Calibration, raw: Bme280Raw, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        compensate_bme280(cal, raw)


def test_c_division_truncates_toward_zero() -> None:
    assert [_div0(7, 2), _div0(-7, 2), _div0(7, -2), _div0(-7, -2)] == [3, -3, -3, 3]


# --- properties ---------------------------------------------------------------------------------

chips = st.builds(
    Bme280Calibration,
    dig_T1=st.integers(26000, 29000), dig_T2=st.integers(25000, 27500), dig_T3=st.integers(-1000, 50),
    dig_P1=st.integers(35000, 38500), dig_P2=st.integers(-11000, -10000), dig_P3=st.integers(2500, 3500),
    dig_P4=st.integers(2000, 9000), dig_P5=st.integers(-200, 200), dig_P6=st.integers(-10, 0),
    dig_P7=st.integers(9000, 16000), dig_P8=st.integers(-15000, -10000), dig_P9=st.integers(4000, 6500),
    dig_H1=st.integers(60, 100), dig_H2=st.integers(340, 380), dig_H3=st.integers(0, 10),
    dig_H4=st.integers(280, 340), dig_H5=st.integers(0, 60), dig_H6=st.integers(20, 35),
)  # fmt: skip


@settings(max_examples=300)
@given(chips, st.integers(400_000, 600_000), st.integers(250_000, 500_000), st.integers(0, 65535))
def test_integer_formulas_agree_with_the_double_ones(
    cal: Bme280Calibration, adc_t: int, adc_p: int, adc_h: int
) -> None:
    centi, t_fine = compensate_temperature(cal, adc_t)
    t_ref, t_fine_ref = t_double(cal, adc_t)
    assert abs(centi / 100 - t_ref) <= 0.01
    q24_8 = compensate_pressure(cal, adc_p, t_fine)
    assert q24_8 is not None
    assert abs(q24_8 / 256 - p_double(cal, adc_p, t_fine_ref)) < 1.0
    q22_10 = compensate_humidity(cal, adc_h, t_fine)
    assert 0 <= q22_10 <= 100 * 1024
    assert abs(q22_10 / 1024 - h_double(cal, adc_h, t_fine_ref)) < 0.05


@given(
    st.binary(min_size=26, max_size=26),
    st.binary(min_size=7, max_size=7),
    st.binary(min_size=8, max_size=8),
)
def test_any_register_bytes_give_a_reading_or_decode_error(
    tp: bytes, h: bytes, data: bytes
) -> None:
    try:
        reading = decode_bme280(tp, h, data)
    except DecodeError:
        return
    assert -40 <= reading.temperature_c <= 85
    assert reading.pressure_pa is None or 30_000 <= reading.pressure_pa <= 110_000
    assert reading.humidity_pct is None or 0 <= reading.humidity_pct <= 100
