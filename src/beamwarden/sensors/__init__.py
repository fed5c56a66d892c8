"""Room: sensors (pure; imports only ``protocol``). Decoders, one module per sensor family.

Nothing here does I/O or reads a clock: bytes and lines come in as arguments, frozen results come
out, and bad input raises :class:`DecodeError` (the room's one base exception). The agent's drivers
and the MQTT bridge share these decoders.

* :mod:`.geiger` — the MightyOhm Geiger counter's serial line; :mod:`.geiger_sim` its firmware;
* :mod:`.bme280` — Bosch BME280 compensation from register bytes;
* :mod:`.govee` — Govee thermo-hygrometer BLE manufacturer data;
* :mod:`.gateways` — govee2mqtt, OpenMQTTGateway and Theengs Gateway MQTT messages;
* :mod:`.ids` — one spelling of a device's MAC (``ble:A4C138123456``).
"""

from .bme280 import (
    Bme280Calibration,
    Bme280Raw,
    Bme280Reading,
    compensate_bme280,
    decode_bme280,
    parse_bme280_calibration,
    parse_bme280_raw,
)
from .errors import DecodeError, UnsupportedPayload
from .gateways import (
    Availability,
    AvailabilityKind,
    GatewayReading,
    decode_bt_to_mqtt,
    decode_gateway_message,
    decode_govee2mqtt,
)
from .geiger import GeigerReading, parse_geiger_line
from .geiger_sim import GeigerSimulator, firmware_line
from .govee import GoveeReading, decode_govee
from .ids import ble_device_id, govee_device_ids, normalise_mac

__all__ = [
    "Availability",
    "AvailabilityKind",
    "Bme280Calibration",
    "Bme280Raw",
    "Bme280Reading",
    "DecodeError",
    "GatewayReading",
    "GeigerReading",
    "GeigerSimulator",
    "GoveeReading",
    "UnsupportedPayload",
    "ble_device_id",
    "compensate_bme280",
    "decode_bme280",
    "decode_bt_to_mqtt",
    "decode_gateway_message",
    "decode_govee",
    "decode_govee2mqtt",
    "firmware_line",
    "govee_device_ids",
    "normalise_mac",
    "parse_bme280_calibration",
    "parse_bme280_raw",
    "parse_geiger_line",
]
