"""Room: sensors (pure). Govee thermo-hygrometers: BLE manufacturer data → temperature, humidity, battery.

Govee thermometers broadcast their reading in the manufacturer-specific data of their
advertisements. Which layout a payload has is decided by the company id **and** the payload length
(and the advertised name where a model is named), never by the company id alone: the same company
ids carry other Govee products (air-quality monitors, meat probes, lights).

Two layouts (see :data:`SEPARATE_LE` and :data:`PACKED_BE`):

* separate little-endian fields: int16 °C × 100, uint16 %RH × 100, battery byte;
* one 24-bit big-endian value ``v`` and a battery byte: bit 23 is the sign, ``m = v & 0x7FFFFF``,
  temperature = ±trunc(m / 1000) / 10 °C, humidity = (m mod 1000) / 10 %RH.

A set top bit in the battery byte is the sensor's error flag, and temperatures outside
−40…100 °C are errors: both raise :class:`DecodeError`. A payload that is not a supported
thermometer raises :class:`UnsupportedPayload`.

Input: the manufacturer data as a gateway publishes it (the 2-byte little-endian company id first,
``88ec000341c26400`` → company 0xEC88) or, with ``company_id=``, the payload after it (as BlueZ
and bleak hand it over). Some Bluetooth stacks glue the Govee iBeacon record (Apple company id,
``INTELLI_ROCKS`` UUID, 25 bytes) to the end; it is removed first.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from beamwarden.protocol import SensorType

from .errors import DecodeError, UnsupportedPayload

#: int16 °C × 100, uint16 %RH × 100, battery (%, top bit = error)
SEPARATE_LE = struct.Struct("<hHB")
#: 24-bit big-endian value as (bits 23..16, bits 15..0), battery (%, top bit = error)
PACKED_BE = struct.Struct(">BHB")

COMPANY_EC88 = 0xEC88
COMPANY_0001 = 0x0001
COMPANY_8801 = 0x8801  # H5179, first firmware

TEMPERATURE_RANGE_C = (-40.0, 100.0)
_SIGN_BIT = 0x800000
_MAGNITUDE = 0x7FFFFF
_ERROR_FLAG = 0x80

#: the iBeacon record some stacks append: Apple's company id (4C 00), type 0x02, length 0x15,
#: a 16-byte UUID starting ``INTELLI_ROCKS``, major, minor, power: 25 bytes
_IBEACON_HEAD = b"\x4c\x00\x02\x15"
_IBEACON_UUID_START = b"INTELLI_ROCKS"
_IBEACON_LENGTH = 25


@dataclass(frozen=True, slots=True)
class GoveeFormat:
    """Where one kind of payload keeps its reading."""

    company_id: int
    length: int  # bytes after the company id
    prefix: bytes  # constant leading bytes of the payload
    packed: bool  # PACKED_BE if true, SEPARATE_LE otherwise
    offset: int  # where the layout starts in the payload


_EC88_PACKED = GoveeFormat(COMPANY_EC88, 6, b"\x00", True, 1)
_EC88_H5074 = GoveeFormat(COMPANY_EC88, 7, b"\x00", False, 1)
_EC88_SEPARATE = GoveeFormat(COMPANY_EC88, 9, b"\x00", False, 1)
_0001_PACKED = GoveeFormat(COMPANY_0001, 6, b"\x01\x01", True, 2)
_0001_H5108 = GoveeFormat(COMPANY_0001, 8, b"\x01\x01", True, 2)
_8801_H5179 = GoveeFormat(COMPANY_8801, 9, b"\xec\x00\x01\x01", False, 4)

#: per-model facts: the payloads each model sends (H5179: both firmwares)
MODELS: dict[str, tuple[GoveeFormat, ...]] = {
    "H5051": (_EC88_SEPARATE,),
    "H5052": (_EC88_SEPARATE,),
    "H5071": (_EC88_SEPARATE,),
    "H5072": (_EC88_PACKED,),
    "H5074": (_EC88_H5074,),
    "H5075": (_EC88_PACKED,),
    "H5100": (_0001_PACKED,),
    "H5101": (_0001_PACKED,),
    "H5102": (_0001_PACKED,),
    "H5103": (_0001_PACKED,),
    "H5104": (_0001_PACKED,),
    "H5105": (_0001_PACKED,),
    "H5108": (_0001_H5108,),
    "H5110": (_0001_PACKED,),
    "H5174": (_0001_PACKED,),
    "H5177": (_0001_PACKED,),
    "H5179": (_8801_H5179, _0001_PACKED),
}


def _by_shape() -> dict[tuple[int, int], tuple[GoveeFormat, str]]:
    """(company id, length) → the format and the models that send it (``H5072/H5075``)."""
    models: dict[GoveeFormat, list[str]] = {}
    for model, formats in MODELS.items():
        for fmt in formats:
            models.setdefault(fmt, []).append(model)
    return {(f.company_id, f.length): (f, "/".join(sorted(m))) for f, m in models.items()}


_BY_SHAPE = _by_shape()
#: the model in an advertised name: GVH5075_2762, Govee_H5074_5FF4, GV5179_6319, GV51085242
_NAME_RE = re.compile(r"(?:GVH|GV|Govee_H|Govee_|B|H)(5[0-9]{3})", re.ASCII)


@dataclass(frozen=True, slots=True)
class GoveeReading:
    """One decoded advertisement. ``model`` is the advertised model, or every model that sends
    this kind of payload when no name said which (``H5072/H5075``)."""

    model: str
    temperature_c: float
    humidity_pct: float
    battery_pct: int

    sensor_type: ClassVar[str] = SensorType.CLIMATE.value

    def payload(self) -> dict[str, float]:
        """The reading's payload in PROTOCOL.md's ``climate`` vocabulary."""
        return {
            "temperature_c": self.temperature_c,
            "humidity_pct": self.humidity_pct,
            "battery_pct": self.battery_pct,
        }


@lru_cache(maxsize=4096)
def model_in_name(name: str) -> str | None:
    """``GVH5075_2762`` → ``H5075``; ``None`` when the name names no Govee model."""
    match = _NAME_RE.match(name)
    return None if match is None else "H" + match.group(1)


def _format_for(company_id: int, length: int, name: str | None) -> tuple[GoveeFormat, str]:
    model = model_in_name(name) if name else None
    if model is None:
        found = _BY_SHAPE.get((company_id, length))
        if found is None:
            raise UnsupportedPayload(
                f"no Govee thermometer sends {length} bytes under company id {company_id:#06x}"
            )
        return found
    formats = MODELS.get(model)
    if formats is None:
        raise UnsupportedPayload(f"Govee {model} is not a supported thermometer")
    for fmt in formats:
        if fmt.company_id == company_id and fmt.length == length:
            return fmt, model
    raise UnsupportedPayload(
        f"Govee {model} does not send {length} bytes under company id {company_id:#06x}"
    )


def decode_govee(
    data: bytes, company_id: int | None = None, name: str | None = None
) -> GoveeReading:
    """Manufacturer data → a reading (see the module's docstring for what is accepted).

    ``company_id``: given when ``data`` is the payload without its 2-byte company id prefix.
    ``name``: the advertised local name, when known; it picks the model where payloads look alike.
    """
    if company_id is None:
        if len(data) < 2:
            raise DecodeError("manufacturer data starts with a 2-byte company id")
        company_id = data[0] | data[1] << 8
        data = data[2:]
    length = len(data)
    if length > _IBEACON_LENGTH:
        record = data[-_IBEACON_LENGTH:]
        if record[:4] == _IBEACON_HEAD and record[4:17] == _IBEACON_UUID_START:
            data = data[:-_IBEACON_LENGTH]
            length -= _IBEACON_LENGTH
    fmt, model = _format_for(company_id, length, name)
    if data[: len(fmt.prefix)] != fmt.prefix:
        raise UnsupportedPayload(
            f"a {model} payload starts with {fmt.prefix.hex()}, not {data[:4].hex()}"
        )
    if fmt.packed:
        high, low, battery = PACKED_BE.unpack_from(data, fmt.offset)
        value = high << 16 | low
        magnitude = value & _MAGNITUDE
        tenths = magnitude // 1000
        temperature = (-tenths if value & _SIGN_BIT else tenths) / 10
        humidity = (magnitude % 1000) / 10
    else:
        centi, humidity_centi, battery = SEPARATE_LE.unpack_from(data, fmt.offset)
        temperature = centi / 100
        humidity = humidity_centi / 100
    if battery & _ERROR_FLAG:
        raise DecodeError(f"the {model} reports an error (battery byte {battery:#04x})")
    if not TEMPERATURE_RANGE_C[0] <= temperature <= TEMPERATURE_RANGE_C[1]:
        raise DecodeError(f"temperature {temperature} °C is outside −40…100 °C: an error")
    if humidity > 100 or battery > 100:
        raise DecodeError(f"humidity {humidity} % or battery {battery} % is above 100")
    return GoveeReading(model, temperature, humidity, battery)
