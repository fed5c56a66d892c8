"""Room: server (records; imports nothing of ours). The device registry's plain data.

Exchanged between :mod:`beamwarden.server.services.devices` (which defines the port) and
:mod:`beamwarden.server.store.devices` (which implements it); adapters may not import services,
so the records live here, below both, like :mod:`beamwarden.server.records`.

A device is keyed by its fleet-wide sensor id (``ble:A4C138123456``), the same key its readings'
series carry, so a rename changes an attribute and never the series.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeviceAttribute(StrEnum):
    """The attributes an operator sets on a device; each change is kept in the history."""

    NAME = "name"
    ROOM = "room"
    SITE = "site"
    CLAIMED = "claimed"


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device as stored: its ids, what an operator set, when and by whom it was last heard."""

    device_id: str  # ble:<MAC>, or another fleet-wide sensor id
    created_us: int
    updated_us: int
    vendor_id: str | None = None  # govee:<16 hex> when a gateway or a list named it so
    model: str | None = None
    name: str | None = None
    room: str | None = None
    site: str | None = None
    claimed: bool = False
    last_seen_us: int | None = None
    last_source: str | None = None  # the gateway (or "govee2mqtt") that heard it last


@dataclass(frozen=True, slots=True)
class DeviceChanges:
    """What an edit sets. ``None`` leaves an attribute as it is; ``""`` clears a text attribute."""

    name: str | None = None
    room: str | None = None
    site: str | None = None
    claimed: bool | None = None

    def wanted(self) -> dict[DeviceAttribute, str | bool]:
        """The attributes this edit touches (an empty dict: a no-op)."""
        out: dict[DeviceAttribute, str | bool] = {}
        for attribute in DeviceAttribute:
            value = getattr(self, attribute.value)
            if value is not None:
                out[attribute] = value
        return out


@dataclass(frozen=True, slots=True)
class AttributeChange:
    """One entry of a device's history: ``attribute`` became ``value`` at ``since_us``."""

    device_id: str
    attribute: DeviceAttribute
    value: str | None  # text attributes as set; ``claimed`` as "true" / "false"
    previous: str | None
    since_us: int
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class SeenDevice:
    """A device a gateway heard: created unclaimed if it is new, its last sighting kept."""

    device_id: str
    seen_us: int
    source: str
    vendor_id: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A device an import or an operator names before (or after) it is heard."""

    device_id: str
    vendor_id: str | None = None
    model: str | None = None
