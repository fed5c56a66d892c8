"""Room: sensors (pure). Stable device ids: one spelling of a Bluetooth MAC, fleet-wide.

A thermometer is one series whichever gateway, cloud or agent heard it, so every decoder names
it the same way: ``ble:`` and the MAC in upper-case hex without separators (``ble:A4C138123456``,
PROTOCOL.md's fleet-wide sensor id). govee2mqtt names devices by Govee's 8-byte id, whose last six
bytes are the MAC (``1F:80:A4:C1:38:12:34:56`` → ``ble:A4C138123456``).
"""

from __future__ import annotations

import re

from .errors import DecodeError

#: six bytes in hex, separated all by ``:``, all by ``-`` or not at all
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}")
#: Govee's device id: eight bytes, same separator rules
_GOVEE_ID_RE = re.compile(r"[0-9A-Fa-f]{2}([:-]?)(?:[0-9A-Fa-f]{2}\1){6}[0-9A-Fa-f]{2}")

BLE_SCHEME = "ble:"
GOVEE_SCHEME = "govee:"


def _hex_only(text: str) -> str:
    return text.replace(":", "").replace("-", "").upper()


def normalise_mac(mac: str) -> str:
    """``a4:c1:38:12:34:56`` (or ``A4-C1-…``, ``a4c138123456``) → ``A4C138123456``."""
    if _MAC_RE.fullmatch(mac) is None:
        raise DecodeError(f"not a MAC address: {mac[:40]!r}")
    return _hex_only(mac)


def ble_device_id(mac: str) -> str:
    """The fleet-wide sensor id of a Bluetooth device: ``ble:A4C138123456``."""
    return BLE_SCHEME + normalise_mac(mac)


def govee_device_ids(govee_id: str) -> tuple[str, str]:
    """Govee's 8-byte device id → ``(ble:<MAC>, govee:<16 hex>)``; the MAC is its last six bytes."""
    if _GOVEE_ID_RE.fullmatch(govee_id) is None:
        raise DecodeError(f"not a Govee device id (8 bytes in hex): {govee_id[:40]!r}")
    hex16 = _hex_only(govee_id)
    return BLE_SCHEME + hex16[4:], GOVEE_SCHEME + hex16
