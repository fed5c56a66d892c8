"""Room: agent (drivers). ``bme280``: a Bosch BME280 on I2C (smbus2), in forced mode (polling).

Each read triggers one measurement (forced mode: the chip sleeps in between, so it does not warm
itself), waits for it, reads the 8 data bytes and hands them to the pure
:func:`beamwarden.sensors.compensate_bme280` (the datasheet's integer formulas). The chip id is
checked (``0x60``; a BMP280 answers ``0x58`` and has no humidity) and the calibration read once
per opening of the bus. An I/O error closes the bus; the next read reopens it and reads the
calibration again, so a sensor swapped on a running node is read correctly.

Readings are ``sensor_type = "climate"``: ``temperature_c``, ``pressure_pa``, ``humidity_pct``.
Touches: the I2C bus device ``/dev/i2c-<bus>``, at the configured address only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import smbus2
from pydantic import Field

from beamwarden.agent.clock import Offload
from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    PollingDriver,
    Sample,
    SensorContext,
    Transport,
    Value,
)
from beamwarden.agent.errors import DriverError
from beamwarden.sensors import (
    Bme280Calibration,
    compensate_bme280,
    parse_bme280_calibration,
    parse_bme280_raw,
)

REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CALIB_TP = 0x88
REG_CALIB_H = 0xE1
REG_DATA = 0xF7
CHIP_ID = 0x60
STATUS_MEASURING = 0x08
MODE_FORCED = 0b01
#: a forced measurement with 16× oversampling on all three takes about 113 ms (datasheet 9.1)
MEASURE_WAIT_S = 0.005
MEASURE_DEADLINE_S = 0.5

#: oversampling setting → the register's 3-bit code
OVERSAMPLING = {1: 0b001, 2: 0b010, 4: 0b011, 8: 0b100, 16: 0b101}


class SMBusLike(Protocol):
    """What the driver uses of :class:`smbus2.SMBus` (tests pass a fake)."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def close(self) -> None: ...


def open_smbus(bus: int) -> SMBusLike:
    return smbus2.SMBus(bus)


class Bme280Config(DriverConfig):
    #: the I2C bus number: /dev/i2c-1 on a Raspberry Pi
    bus: int = Field(1, ge=0)
    #: 0x76 (SDO to GND) or 0x77 (SDO to VDD); TOML accepts 0x76 as a number
    address: Literal[0x76, 0x77] = 0x76
    oversampling: Literal[1, 2, 4, 8, 16] = 1


class Bme280Driver(PollingDriver):
    info = DriverInfo(
        name="bme280",
        transport=Transport.I2C,
        config_model=Bme280Config,
        summary="Bosch BME280 temperature, humidity and pressure on I2C (forced mode)",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, Bme280Config)
        self.settings = config
        self.bus: SMBusLike | None = None
        self.calibration: Bme280Calibration | None = None
        self.opened = 0
        #: how the bus is opened and where blocking bus calls run (tests: a fake, inline)
        self.open_bus: Callable[[int], SMBusLike] = open_smbus
        self.offload: Offload = asyncio.to_thread

    def _setup(self) -> tuple[SMBusLike, Bme280Calibration]:
        if self.bus is not None and self.calibration is not None:
            return self.bus, self.calibration
        bus = self.open_bus(self.settings.bus)
        try:
            address = self.settings.address
            chip = bus.read_byte_data(address, REG_CHIP_ID)
            if chip != CHIP_ID:
                raise DriverError(
                    f"the chip at {address:#04x} on bus {self.settings.bus} is not a BME280 "
                    f"(chip id {chip:#04x}, a BME280 says {CHIP_ID:#04x})"
                )
            tp = bytes(bus.read_i2c_block_data(address, REG_CALIB_TP, 26))
            h = bytes(bus.read_i2c_block_data(address, REG_CALIB_H, 7))
            calibration = parse_bme280_calibration(tp, h)
        except BaseException:
            bus.close()
            raise
        self.bus, self.calibration = bus, calibration
        self.opened += 1
        return bus, calibration

    def _trigger(self) -> None:
        bus, _ = self._setup()
        code = OVERSAMPLING[self.settings.oversampling]
        address = self.settings.address
        bus.write_byte_data(address, REG_CTRL_HUM, code)  # takes effect with the next ctrl_meas
        bus.write_byte_data(address, REG_CTRL_MEAS, code << 5 | code << 2 | MODE_FORCED)

    def _measuring(self) -> bool:
        assert self.bus is not None
        return bool(self.bus.read_byte_data(self.settings.address, REG_STATUS) & STATUS_MEASURING)

    def _data(self) -> bytes:
        assert self.bus is not None
        return bytes(self.bus.read_i2c_block_data(self.settings.address, REG_DATA, 8))

    def _drop_bus(self) -> None:
        if self.bus is not None:
            self.bus.close()
        self.bus, self.calibration = None, None

    async def read(self) -> Sequence[Sample]:
        clock = self.context.clock
        try:
            await self.offload(self._trigger)
            deadline = clock.monotonic() + MEASURE_DEADLINE_S
            while await self.offload(self._measuring):
                if clock.monotonic() > deadline:
                    raise TimeoutError("the BME280 did not finish its measurement")
                await clock.sleep(MEASURE_WAIT_S)
            data = await self.offload(self._data)
        except (OSError, TimeoutError):
            self._drop_bus()  # reopened (and recalibrated) on the next read
            raise
        assert self.calibration is not None
        reading = compensate_bme280(self.calibration, parse_bme280_raw(data))
        payload: dict[str, Value] = {k: round(v, 2) for k, v in reading.payload().items()}
        return [Sample(payload, clock.now(), sensor_type="climate")]

    async def close(self) -> None:
        self._drop_bus()
