"""The BME280 driver on a fake SMBus that behaves like the chip's register map: forced mode, the
datasheet's worked example through the pure compensation, waiting for a measurement on the
injected clock, refusing a chip that is not a BME280, and reopening the bus after an I/O error."""

from __future__ import annotations

import asyncio

import pytest

from beamwarden.agent.drivers import Sample, SensorContext, load_driver
from beamwarden.agent.drivers.bme280 import Bme280Config, Bme280Driver
from beamwarden.agent.errors import DriverError
from beamwarden.protocol import VOCABULARY
from tests.unit.agent.fakes import START, FakeClock, inline
from tests.unit.sensors.test_bme280 import EXAMPLE, calibration_bytes, data_bytes


class FakeBme280:
    """Registers of a BME280 at one address; a forced measurement stays busy ``busy_reads``
    status reads, then fills the data registers with ``adc``."""

    def __init__(self, address: int = 0x76, chip_id: int = 0x60) -> None:
        self.address = address
        self.regs = bytearray(256)
        self.regs[0xD0] = chip_id
        tp, h = calibration_bytes(EXAMPLE)
        self.regs[0x88 : 0x88 + 26] = tp
        self.regs[0xE1 : 0xE1 + 7] = h
        self.adc = (519888, 415148, 30000)  # the datasheet's T and P, a plausible humidity
        self.busy_reads = 0
        self.busy = 0
        self.writes: list[tuple[int, int]] = []
        self.closed = False
        self.fail_next: OSError | None = None

    def _check(self, addr: int) -> None:
        assert not self.closed
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if addr != self.address:
            raise OSError(121, "Remote I/O error")  # what a missing device answers

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        self._check(i2c_addr)
        if register == 0xF3:
            if self.busy > 0:
                self.busy -= 1
                return 0x08
            return 0x00
        return self.regs[register]

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        self._check(i2c_addr)
        self.writes.append((register, value))
        self.regs[register] = value
        if register == 0xF4 and value & 0b11 == 0b01:
            self.busy = self.busy_reads
            self.regs[0xF7:0xFF] = data_bytes(*self.adc)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        self._check(i2c_addr)
        return list(self.regs[register : register + length])

    def close(self) -> None:
        self.closed = True


def driver(chips: list[FakeBme280], clock: FakeClock | None = None, **keys: object) -> Bme280Driver:
    config = Bme280Config.model_validate(keys)
    d = Bme280Driver(config, SensorContext("n-1", "climate", "bme280", clock or FakeClock()))
    buses = iter(chips)
    d.open_bus = lambda number: next(buses)
    d.offload = inline
    return d


async def test_a_forced_measurement_gives_the_datasheet_example() -> None:
    chip = FakeBme280()
    d = driver([chip], oversampling=2)
    assert await d.read() == [
        Sample(
            {"temperature_c": 25.08, "pressure_pa": 100653.25, "humidity_pct": 55.35},
            START,
            sensor_type="climate",
        )
    ]
    assert chip.writes == [(0xF2, 0b010), (0xF4, 0b010_010_01)]
    assert set((await d.read())[0].payload) <= set(VOCABULARY["climate"])
    assert d.opened == 1  # calibration read once, not per read


async def test_the_driver_waits_for_the_measurement_on_its_clock() -> None:
    chip, clock = FakeBme280(), FakeClock()
    chip.busy_reads = 3
    d = driver([chip], clock)
    task = asyncio.ensure_future(d.read())
    await clock.advance(0.1)
    (sample,) = await task
    assert sample.payload["temperature_c"] == 25.08
    assert clock.sleeps == [0.005] * 3


async def test_a_chip_that_never_finishes_fails_the_read() -> None:
    chip, clock = FakeBme280(), FakeClock()
    chip.busy_reads = 10_000
    d = driver([chip], clock)
    task = asyncio.ensure_future(d.read())
    await clock.advance(1)
    with pytest.raises(TimeoutError):
        await task
    assert chip.closed


async def test_an_io_error_closes_the_bus_and_the_next_read_reopens_it() -> None:
    first, second = FakeBme280(), FakeBme280()
    d = driver([first, second])
    await d.read()
    first.fail_next = OSError(5, "Input/output error")  # the sensor's cable was pulled
    with pytest.raises(OSError, match="Input/output"):
        await d.read()
    assert first.closed
    second.adc = (519888, 415148, 0x8000)  # humidity skipped: left out, not a zero
    (sample,) = await d.read()
    assert sample.payload == {"temperature_c": 25.08, "pressure_pa": 100653.25}
    assert d.opened == 2


async def test_another_chip_or_address_is_refused_clearly() -> None:
    with pytest.raises(DriverError, match=r"not a BME280 \(chip id 0x58"):
        await driver([FakeBme280(chip_id=0x58)]).read()
    with pytest.raises(OSError, match="Remote I/O"):
        await driver([FakeBme280(address=0x77)]).read()


def test_the_config_takes_only_the_two_addresses() -> None:
    assert Bme280Config.model_validate({"address": 0x77}).address == 0x77
    with pytest.raises(ValueError, match="address"):
        Bme280Config.model_validate({"address": 0x40})


def test_bme280_registers_through_the_entry_point() -> None:
    assert load_driver("bme280") is Bme280Driver
