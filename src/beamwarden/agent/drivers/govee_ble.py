"""Room: agent (drivers). ``govee_ble``: Govee thermo-hygrometers heard over Bluetooth (streaming).

An active BLE scan (bleak; active, because several models put their data in the scan response)
hears every advertisement in range. Each manufacturer-data record is decoded by the pure
:func:`beamwarden.sensors.decode_govee`; what is not a Govee thermometer (phones, beacons, other
Govee products: ``UnsupportedPayload``) is skipped quietly, a Govee record that does not decode
(an error flag, an impossible value) is counted in ``malformed``. A reading is
``sensor_type = "climate"`` with the fleet-wide ``sensor_id`` ``ble:<MAC>`` (PROTOCOL.md: the same
thermometer heard by two nodes is one series), ``temperature_c``, ``humidity_pct``,
``battery_pct`` and ``rssi_dbm``.

A thermometer advertises every two seconds or so: ``min_interval_s`` keeps one reading per device
per interval (default 60 s). ``addresses`` limits the scan to known devices. If nothing at all is
heard for ``quiet_s`` (about five minutes by default), the scheduler restarts the scan — a stalled
BlueZ discovery is the usual cause.

Touches: the Bluetooth adapter (BlueZ over D-Bus), through bleak only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from pydantic import Field, field_validator

from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    Sample,
    SensorContext,
    StreamingDriver,
    Transport,
    Value,
)
from beamwarden.sensors import DecodeError, UnsupportedPayload, decode_govee, normalise_mac
from beamwarden.sensors.ids import ble_device_id

log = logging.getLogger("beamwarden.agent.drivers.govee_ble")

#: advertisements decoded but not yet taken by the scheduler; beyond this they are dropped (counted)
BACKLOG = 1000
Heard = Callable[[BLEDevice, AdvertisementData], None]


class Scanner(Protocol):
    """What the driver uses of :class:`bleak.BleakScanner` (tests pass a fake)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class GoveeBleConfig(DriverConfig):
    #: the BlueZ adapter ("hci0"); None: the default one
    adapter: str | None = Field(None, pattern=r"^hci[0-9]+$")
    #: MAC addresses to keep (any spelling); empty: every Govee thermometer in range
    addresses: list[str] = Field(default_factory=list)
    #: at most one reading per device per this many seconds
    min_interval_s: float = Field(60.0, ge=0)
    #: silence (no Govee heard at all) after which the scan is restarted
    silence_s: float = Field(300.0, gt=0)

    @field_validator("addresses")
    @classmethod
    def _macs(cls, value: list[str]) -> list[str]:
        return [normalise_mac(mac) for mac in value]

    def quiet_s(self) -> float:
        return self.silence_s / 2


def bleak_scanner(heard: Heard, adapter: str | None) -> Scanner:
    if adapter is None:
        return BleakScanner(detection_callback=heard, scanning_mode="active")
    return BleakScanner(
        detection_callback=heard, scanning_mode="active", bluez={"adapter": adapter}
    )


class GoveeBleDriver(StreamingDriver):
    info = DriverInfo(
        name="govee_ble",
        transport=Transport.BLE,
        config_model=GoveeBleConfig,
        summary="Govee thermo-hygrometers, decoded from BLE advertisements (active scan)",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, GoveeBleConfig)
        self.settings = config
        self.wanted = frozenset(config.addresses)
        #: how the scanner is made (tests: a fake that replays recorded advertisements)
        self.open_scanner: Callable[[Heard, str | None], Scanner] = bleak_scanner
        self.last_kept: dict[str, float] = {}
        self.heard = 0
        self.overflow = 0
        self._queue: asyncio.Queue[Sample] | None = None

    def decode(self, device: BLEDevice, adv: AdvertisementData) -> Sample | None:
        """An advertisement → a sample, or ``None`` (not a Govee thermometer, malformed, not
        wanted, or too soon after the last reading of that device)."""
        self.heard += 1
        try:
            mac = normalise_mac(device.address)
        except DecodeError:  # not a MAC (macOS gives UUIDs): not a device we can name fleet-wide
            return None
        if self.wanted and mac not in self.wanted:
            return None
        name = adv.local_name or device.name
        for company_id, data in adv.manufacturer_data.items():
            try:
                reading = decode_govee(data, company_id=company_id, name=name)
            except UnsupportedPayload:
                continue
            except DecodeError as exc:
                self.malformed += 1
                log.debug("%s: %s", mac, exc)
                continue
            now = self.context.clock.monotonic()
            last = self.last_kept.get(mac)
            if last is not None and now - last < self.settings.min_interval_s:
                return None
            self.last_kept[mac] = now
            payload: dict[str, Value] = dict(reading.payload())
            payload["rssi_dbm"] = adv.rssi
            return Sample(
                payload,
                self.context.clock.now(),
                sensor_type="climate",
                sensor_id=ble_device_id(mac),
            )
        return None

    def _heard(self, device: BLEDevice, adv: AdvertisementData) -> None:
        sample = self.decode(device, adv)
        if sample is None or self._queue is None:
            return
        try:
            self._queue.put_nowait(sample)
        except asyncio.QueueFull:
            self.overflow += 1

    async def subscribe(self) -> AsyncIterator[Sample]:
        queue: asyncio.Queue[Sample] = asyncio.Queue(BACKLOG)
        self._queue = queue
        scanner = self.open_scanner(self._heard, self.settings.adapter)
        await scanner.start()
        try:
            while True:
                yield await queue.get()
        finally:
            self._queue = None
            await scanner.stop()
