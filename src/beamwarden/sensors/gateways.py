"""Room: sensors (pure). Gateway MQTT messages → decoded climate readings or availability.

:func:`decode_gateway_message` takes a topic and the payload bytes (the retain flag is the
bridge's business, not a decoder's) and returns a :class:`GatewayReading`, an
:class:`Availability`, ``None`` for a topic that carries neither (the gateways publish much
else), or raises :class:`DecodeError` for a message it should read and cannot.

govee2mqtt (topics fixed by govee2mqtt; ``ID`` is Govee's 8-byte device id without colons, whose
last six bytes are the MAC):

* ``gv2mqtt/sensor/sensor-<ID>-sensortemperature/state``: ``"21.50"``, in the unit govee2mqtt's
  ``temperature_scale`` is set to (°C by default; ``fahrenheit=True`` for °F), converted to °C;
* ``gv2mqtt/sensor/sensor-<ID>-sensorhumidity/state``: ``"44.20"`` (%RH);
  an empty state means "no value yet" and gives ``None``;
* ``gv2mqtt/sensor/sensor-<ID>-gv2mqtt-status/state``: ``Available`` / ``Missing`` / ``Unknown``,
  the device's availability, not a reading;
* ``gv2mqtt/availability``: ``online`` / ``offline`` (its last will): govee2mqtt's availability.

OpenMQTTGateway and Theengs Gateway (``<base>/<gateway>/BTtoMQTT[/<MAC>]``, one JSON object per
advertisement): ``id`` (the MAC; else the topic's last level), ``rssi``, ``name``, and either
already-decoded ``tempc`` (or ``tempf``), ``hum``, ``batt``, or the raw ``manufacturerdata`` in
hex (company id first). Raw Govee thermometer data is decoded here with
:mod:`beamwarden.sensors.govee` and wins over the gateway's own decoding; other manufacturer data
falls back to the decoded fields; an advertisement with neither (a phone, a beacon) gives
``None``. An optional ``time`` (ISO-8601 with a zone) is the device time.
``<base>/<gateway>/LWT`` ``online`` / ``offline`` is the gateway's availability.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import msgspec

from beamwarden.protocol import SensorType

from .errors import DecodeError, UnsupportedPayload
from .govee import GoveeReading, decode_govee
from .ids import ble_device_id, govee_device_ids

GOVEE2MQTT = "govee2mqtt"
_G2M_PREFIX = "gv2mqtt/"
_G2M_AVAILABILITY = "gv2mqtt/availability"
_G2M_SENSOR_RE = re.compile(
    r"gv2mqtt/sensor/sensor-([0-9A-Fa-f]{16})-([a-z0-9_-]+)/state", re.ASCII
)
_G2M_TEMPERATURE = "sensortemperature"
_G2M_HUMIDITY = "sensorhumidity"
_G2M_STATUS = "gv2mqtt-status"
_G2M_STATUSES: dict[str, bool | None] = {"Available": True, "Missing": False, "Unknown": None}
_ONLINE: dict[str, bool] = {"online": True, "offline": False}
_NUMBER_RE = re.compile(r"-?[0-9]{1,6}(?:\.[0-9]{1,9})?", re.ASCII)
_BT_TO_MQTT = "BTtoMQTT"
_LWT = "LWT"
_ABSOLUTE_ZERO_C = -273.15
_decode_json = msgspec.json.Decoder().decode


class AvailabilityKind(StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Availability:
    """A device or a gateway said whether it is there. ``available`` is ``None`` when unknown."""

    kind: AvailabilityKind
    subject: str  # a device's ``ble:<MAC>``, or the gateway's name
    available: bool | None
    status: str  # as the gateway wrote it
    source: str  # the gateway that said it


@dataclass(frozen=True, slots=True)
class GatewayReading:
    """What a gateway heard from one device; fields it did not carry are ``None``."""

    device_id: str  # ble:<MAC>
    source: str  # the gateway's name, or "govee2mqtt"
    temperature_c: float | None = None
    humidity_pct: float | None = None
    battery_pct: float | None = None
    rssi_dbm: int | None = None
    device_time: datetime | None = None
    model: str | None = None
    vendor_id: str | None = None  # govee:<16 hex> when the gateway names the device so

    sensor_type: ClassVar[str] = SensorType.CLIMATE.value

    def payload(self) -> dict[str, float]:
        """The fields present, in PROTOCOL.md's ``climate`` vocabulary."""
        out: dict[str, float] = {}
        if self.temperature_c is not None:
            out["temperature_c"] = self.temperature_c
        if self.humidity_pct is not None:
            out["humidity_pct"] = self.humidity_pct
        if self.battery_pct is not None:
            out["battery_pct"] = self.battery_pct
        if self.rssi_dbm is not None:
            out["rssi_dbm"] = self.rssi_dbm
        return out


def fahrenheit_to_celsius(value: float) -> float:
    """°F → °C, to the hundredth (the precision gateways publish)."""
    return round((value - 32) * 5 / 9, 2)


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise DecodeError(f"payload is not UTF-8 text: {payload[:40]!r}") from None


def _checked(field: str, value: float) -> float:
    """A climate value that can be true, or :class:`DecodeError`."""
    low, high = (_ABSOLUTE_ZERO_C, math.inf) if field == "temperature_c" else (0.0, 100.0)
    if not (math.isfinite(value) and low <= value <= high):
        raise DecodeError(f"{field} = {value} cannot be right")
    return value


# --- govee2mqtt --------------------------------------------------------------------------------


def decode_govee2mqtt(
    topic: str, payload: bytes, *, fahrenheit: bool = False
) -> GatewayReading | Availability | None:
    """A message on ``gv2mqtt/...``; see the module's docstring."""
    if topic == _G2M_AVAILABILITY:
        return _availability(AvailabilityKind.GATEWAY, GOVEE2MQTT, _text(payload), GOVEE2MQTT)
    match = _G2M_SENSOR_RE.fullmatch(topic)
    if match is None:
        return None
    govee_id, instance = match.groups()
    device_id, vendor_id = govee_device_ids(govee_id)
    text = _text(payload)
    if instance == _G2M_STATUS:
        if text not in _G2M_STATUSES:
            raise DecodeError(
                f"govee2mqtt status is Available, Missing or Unknown, not {text[:40]!r}"
            )
        return Availability(
            AvailabilityKind.DEVICE, device_id, _G2M_STATUSES[text], text, GOVEE2MQTT
        )
    if instance not in (_G2M_TEMPERATURE, _G2M_HUMIDITY) or not text:
        return None
    if _NUMBER_RE.fullmatch(text) is None:
        raise DecodeError(f"govee2mqtt {instance} is a number, not {text[:40]!r}")
    value = float(text)
    if instance == _G2M_HUMIDITY:
        return GatewayReading(
            device_id,
            GOVEE2MQTT,
            humidity_pct=_checked("humidity_pct", value),
            vendor_id=vendor_id,
        )
    celsius = fahrenheit_to_celsius(value) if fahrenheit else value
    return GatewayReading(
        device_id, GOVEE2MQTT, temperature_c=_checked("temperature_c", celsius), vendor_id=vendor_id
    )


# --- OpenMQTTGateway / Theengs BTtoMQTT ---------------------------------------------------------


def _json_object(payload: bytes) -> dict[str, object]:
    try:
        doc = _decode_json(payload)  # msgspec: a third of json.loads's time on bytes
    except (msgspec.DecodeError, RecursionError):
        # strict JSON failed: the standard library also reads NaN and 1e999 (Python writers
        # emit them), which _number then refuses with a clearer message than "not JSON"
        try:
            doc = json.loads(payload)
        except (ValueError, RecursionError):
            raise DecodeError(f"BTtoMQTT payload is not JSON: {payload[:60]!r}") from None
    if not isinstance(doc, dict):
        raise DecodeError("BTtoMQTT payload is a JSON object")
    return doc


def _number(doc: dict[str, object], key: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    # exact types: JSON gives float or int, and a bool (an int subclass) is not a number
    if type(value) is float:
        number = value
    elif type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise DecodeError(f"{key} is too large") from None
    else:
        raise DecodeError(f"{key} is a number, not {value!r:.40}")
    if not math.isfinite(number):
        raise DecodeError(f"{key} is not a finite number")
    return number


def _optional_str(doc: dict[str, object], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) else None


def _device_time(doc: dict[str, object]) -> datetime | None:
    value = doc.get("time")
    if value is None:
        return None
    if not isinstance(value, str):
        raise DecodeError("time is an ISO-8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DecodeError(f"time is not ISO-8601: {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise DecodeError(f"time has no zone: {value[:40]!r}")
    return moment


def _govee_from(doc: dict[str, object]) -> GoveeReading | None:
    data = doc.get("manufacturerdata")
    if not isinstance(data, str):
        return None
    try:
        raw = bytes.fromhex(data)
    except ValueError:
        raise DecodeError(f"manufacturerdata is not hex: {data[:40]!r}") from None
    try:
        return decode_govee(raw, name=_optional_str(doc, "name"))
    except UnsupportedPayload:
        return None


def decode_bt_to_mqtt(topic: str, payload: bytes) -> GatewayReading | None:
    """An OpenMQTTGateway / Theengs ``BTtoMQTT`` message; see the module's docstring."""
    levels = topic.split("/")
    at = levels.index(_BT_TO_MQTT)
    if at == 0:
        raise DecodeError(f"a BTtoMQTT topic names its gateway first: {topic[:80]!r}")
    gateway = levels[at - 1]
    doc = _json_object(payload)
    govee = _govee_from(doc)
    model: str | None
    if govee is not None:
        temperature: float | None = govee.temperature_c
        humidity: float | None = govee.humidity_pct
        battery: float | None = govee.battery_pct
        model = govee.model
    else:
        temperature = _number(doc, "tempc")
        if temperature is None:
            fahrenheit = _number(doc, "tempf")
            temperature = None if fahrenheit is None else fahrenheit_to_celsius(fahrenheit)
        humidity = _number(doc, "hum")
        battery = _number(doc, "batt")
        model = _optional_str(doc, "model_id")
    if temperature is None and humidity is None and battery is None:
        return None
    mac = _optional_str(doc, "id") or (levels[at + 1] if at + 1 < len(levels) else "")
    rssi = _number(doc, "rssi")
    return GatewayReading(
        ble_device_id(mac),
        gateway,
        temperature_c=None if temperature is None else _checked("temperature_c", temperature),
        humidity_pct=None if humidity is None else _checked("humidity_pct", humidity),
        battery_pct=None if battery is None else _checked("battery_pct", battery),
        rssi_dbm=None if rssi is None else round(rssi),
        device_time=_device_time(doc),
        model=model,
    )


# --- dispatch -----------------------------------------------------------------------------------


def _availability(kind: AvailabilityKind, subject: str, text: str, source: str) -> Availability:
    state = _ONLINE.get(text.lower())
    if state is None:
        raise DecodeError(f"availability is online or offline, not {text[:40]!r}")
    return Availability(kind, subject, state, text, source)


def decode_gateway_message(
    topic: str, payload: bytes, *, fahrenheit: bool = False
) -> GatewayReading | Availability | None:
    """Any gateway message → a reading, an availability, or ``None`` (not ours to read).

    ``fahrenheit``: govee2mqtt publishes temperatures in °F (its ``temperature_scale`` is F).
    """
    if topic.startswith(_G2M_PREFIX):
        return decode_govee2mqtt(topic, payload, fahrenheit=fahrenheit)
    levels = topic.split("/")
    if _BT_TO_MQTT in levels:
        return decode_bt_to_mqtt(topic, payload)
    if len(levels) >= 2 and levels[-1] == _LWT and levels[-2]:
        gateway = levels[-2]
        return _availability(AvailabilityKind.GATEWAY, gateway, _text(payload), gateway)
    return None
