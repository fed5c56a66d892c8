"""Room: sensors (pure). Bosch BME280: the datasheet's integer compensation, from register bytes.

What is read:

* the calibration blocks the driver reads once: 26 bytes at ``0x88..0xA1`` (``dig_T1..dig_P9``,
  ``dig_H1``) and 7 bytes at ``0xE1..0xE7`` (``dig_H2..dig_H6``, with ``dig_H4``/``dig_H5`` as
  12-bit values sharing ``0xE5``) → :func:`parse_bme280_calibration`;
* the 8 data bytes at ``0xF7..0xFE`` (20-bit pressure, 20-bit temperature, 16-bit humidity ADC
  values) → :func:`parse_bme280_raw`;
* :func:`compensate_bme280` applies the datasheet's formulas (section 4.2.3, "Compensation formulas"):
  32-bit integer temperature (0.01 °C) and humidity (Q22.10 %RH), 64-bit integer pressure
  (Q24.8 Pa). Results in °C, Pa and %RH.

Python integers do not overflow, so the arithmetic is the datasheet's for every input the sensor
can produce; C's signed division truncates toward zero, which :func:`_div0` reproduces.
A measurement that was skipped (``0x80000`` / ``0x8000``, oversampling "skipped") is ``None``;
without temperature nothing can be compensated. Results outside what the sensor can measure
(−40…85 °C, 300…1100 hPa) mean bad calibration or data and raise :class:`DecodeError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from beamwarden.protocol import SensorType

from .errors import DecodeError

#: ``0x88..0xA1``: T1 (u16), T2, T3, P1 (u16), P2..P9 (s16), a reserved byte, H1 (u8); little-endian
_CALIB_TP = struct.Struct("<HhhHhhhhhhhhxB")
#: ``0xE1..0xE7``: H2 (s16), H3 (u8), E4, E5, E6 (bytes), H6 (s8)
_CALIB_H = struct.Struct("<hBbBbb")
#: ``0xF7..0xFE``: press msb, lsb, xlsb, temp msb, lsb, xlsb, hum msb, lsb
_DATA = struct.Struct(">BBBBBBH")

CALIB_TP_LENGTH = _CALIB_TP.size  # 26
CALIB_H_LENGTH = _CALIB_H.size  # 7
DATA_LENGTH = _DATA.size  # 8
#: the value an ADC register holds when its measurement is skipped
SKIPPED_20BIT = 0x80000
SKIPPED_16BIT = 0x8000

TEMPERATURE_RANGE_C = (-40.0, 85.0)
PRESSURE_RANGE_PA = (30_000.0, 110_000.0)


@dataclass(frozen=True, slots=True)
class Bme280Calibration:
    """The trimming parameters of one chip (datasheet table 16)."""

    dig_T1: int
    dig_T2: int
    dig_T3: int
    dig_P1: int
    dig_P2: int
    dig_P3: int
    dig_P4: int
    dig_P5: int
    dig_P6: int
    dig_P7: int
    dig_P8: int
    dig_P9: int
    dig_H1: int
    dig_H2: int
    dig_H3: int
    dig_H4: int
    dig_H5: int
    dig_H6: int


@dataclass(frozen=True, slots=True)
class Bme280Raw:
    """The ADC values of one measurement: 20-bit temperature and pressure, 16-bit humidity."""

    adc_T: int
    adc_P: int
    adc_H: int


@dataclass(frozen=True, slots=True)
class Bme280Reading:
    """A compensated measurement; a skipped pressure or humidity is ``None``."""

    temperature_c: float
    pressure_pa: float | None
    humidity_pct: float | None

    sensor_type: ClassVar[str] = SensorType.CLIMATE.value

    def payload(self) -> dict[str, float]:
        """The reading's payload in PROTOCOL.md's ``climate`` vocabulary (skipped fields left out)."""
        out = {"temperature_c": self.temperature_c}
        if self.pressure_pa is not None:
            out["pressure_pa"] = self.pressure_pa
        if self.humidity_pct is not None:
            out["humidity_pct"] = self.humidity_pct
        return out


def _need(block: bytes, length: int, what: str) -> None:
    if len(block) != length:
        raise DecodeError(f"{what} is {length} bytes, got {len(block)}")


def parse_bme280_calibration(block_88_a1: bytes, block_e1_e7: bytes) -> Bme280Calibration:
    """The two calibration blocks as read from the chip → :class:`Bme280Calibration`."""
    _need(block_88_a1, CALIB_TP_LENGTH, "the calibration block 0x88..0xA1")
    _need(block_e1_e7, CALIB_H_LENGTH, "the calibration block 0xE1..0xE7")
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1 = _CALIB_TP.unpack(block_88_a1)
    h2, h3, e4, e5, e6, h6 = _CALIB_H.unpack(block_e1_e7)
    # dig_H4 = 0xE4[7:0] (signed) : 0xE5[3:0]; dig_H5 = 0xE6[7:0] (signed) : 0xE5[7:4]
    h4 = e4 * 16 | (e5 & 0x0F)
    h5 = e6 * 16 | (e5 >> 4)
    return Bme280Calibration(t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6)


def parse_bme280_raw(block_f7_fe: bytes) -> Bme280Raw:
    """The 8 data bytes ``0xF7..0xFE`` (one burst read) → the three ADC values."""
    _need(block_f7_fe, DATA_LENGTH, "the data block 0xF7..0xFE")
    p_msb, p_lsb, p_xlsb, t_msb, t_lsb, t_xlsb, hum = _DATA.unpack(block_f7_fe)
    adc_p = (p_msb << 12) | (p_lsb << 4) | (p_xlsb >> 4)
    adc_t = (t_msb << 12) | (t_lsb << 4) | (t_xlsb >> 4)
    return Bme280Raw(adc_t, adc_p, hum)


def _div0(a: int, b: int) -> int:
    """C's signed integer division (toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def compensate_temperature(cal: Bme280Calibration, adc_t: int) -> tuple[int, int]:
    """``(temperature in 0.01 °C, t_fine)``: the datasheet's ``BME280_compensate_T_int32``."""
    var1 = (((adc_t >> 3) - (cal.dig_T1 << 1)) * cal.dig_T2) >> 11
    delta = (adc_t >> 4) - cal.dig_T1
    var2 = (((delta * delta) >> 12) * cal.dig_T3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def compensate_pressure(cal: Bme280Calibration, adc_p: int, t_fine: int) -> int | None:
    """Pressure in Pa as Q24.8 (``value / 256`` Pa): ``BME280_compensate_P_int64``.

    ``None`` where the datasheet returns 0 to avoid a division by zero (``dig_P1`` is 0).
    """
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal.dig_P6
    var2 = var2 + ((var1 * cal.dig_P5) << 17)
    var2 = var2 + (cal.dig_P4 << 35)
    var1 = ((var1 * var1 * cal.dig_P3) >> 8) + ((var1 * cal.dig_P2) << 12)
    var1 = (((1 << 47) + var1) * cal.dig_P1) >> 33
    if var1 == 0:
        return None
    p = 1048576 - adc_p
    p = _div0(((p << 31) - var2) * 3125, var1)
    var1 = (cal.dig_P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.dig_P8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.dig_P7 << 4)


def compensate_humidity(cal: Bme280Calibration, adc_h: int, t_fine: int) -> int:
    """Relative humidity as Q22.10 (``value / 1024`` %RH): ``bme280_compensate_H_int32``."""
    v = t_fine - 76800
    v = ((((adc_h << 14) - (cal.dig_H4 << 20) - (cal.dig_H5 * v)) + 16384) >> 15) * (
        (
            (
                (((((v * cal.dig_H6) >> 10) * (((v * cal.dig_H3) >> 11) + 32768)) >> 10) + 2097152)
                * cal.dig_H2
            )
            + 8192
        )
        >> 14
    )
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * cal.dig_H1) >> 4)
    v = min(max(v, 0), 419430400)
    return v >> 12


def compensate_bme280(cal: Bme280Calibration, raw: Bme280Raw) -> Bme280Reading:
    """One measurement in °C, Pa and %RH; :class:`DecodeError` when it cannot be right."""
    if not 0 <= raw.adc_T < 1 << 20 or raw.adc_T == SKIPPED_20BIT:
        raise DecodeError(f"no temperature measurement (adc_T = {raw.adc_T:#x})")
    centi, t_fine = compensate_temperature(cal, raw.adc_T)
    temperature = centi / 100
    if not TEMPERATURE_RANGE_C[0] <= temperature <= TEMPERATURE_RANGE_C[1]:
        raise DecodeError(f"temperature {temperature} °C is outside what a BME280 measures")
    pressure: float | None = None
    if raw.adc_P != SKIPPED_20BIT:
        if not 0 <= raw.adc_P < 1 << 20:
            raise DecodeError(f"adc_P is a 20-bit value, got {raw.adc_P:#x}")
        q24_8 = compensate_pressure(cal, raw.adc_P, t_fine)
        if q24_8 is None:
            raise DecodeError("calibration dig_P1 is 0: no pressure can be computed")
        pressure = q24_8 / 256
        if not PRESSURE_RANGE_PA[0] <= pressure <= PRESSURE_RANGE_PA[1]:
            raise DecodeError(f"pressure {pressure} Pa is outside what a BME280 measures")
    humidity: float | None = None
    if raw.adc_H != SKIPPED_16BIT:
        if not 0 <= raw.adc_H < 1 << 16:
            raise DecodeError(f"adc_H is a 16-bit value, got {raw.adc_H:#x}")
        humidity = compensate_humidity(cal, raw.adc_H, t_fine) / 1024
    return Bme280Reading(temperature, pressure, humidity)


def decode_bme280(block_88_a1: bytes, block_e1_e7: bytes, block_f7_fe: bytes) -> Bme280Reading:
    """Bme280Calibration blocks and data block as read from the chip → a reading."""
    return compensate_bme280(
        parse_bme280_calibration(block_88_a1, block_e1_e7), parse_bme280_raw(block_f7_fe)
    )
