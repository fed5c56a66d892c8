"""The MightyOhm driver on a pseudo-terminal pair (os.openpty) standing in for the USB serial port:
lines become geiger readings, banners are skipped, garbage is counted and never stored, and an
unplugged then replugged device (a new pty behind the same stable path) is read again."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import serial

from beamwarden.agent.drivers import Sample, SensorContext, load_driver
from beamwarden.agent.drivers.mightyohm import MightyOhmConfig, MightyOhmDriver
from beamwarden.protocol import VOCABULARY
from tests.unit.agent.fakes import START, FakeClock


class Pty:
    """A pty pair whose slave is reachable through a stable symlink, like /dev/serial/by-id."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[Pty]:
    p = Pty(tmp_path / "ttyGEIGER")
    yield p
    for fd in (p.master, p.slave):
        with contextlib.suppress(OSError):
            os.close(fd)


def driver(pty: Pty, **keys: object) -> MightyOhmDriver:
    config = MightyOhmConfig.model_validate({"port": str(pty.link), **keys})
    return MightyOhmDriver(config, SensorContext("n-1", "geiger", "geiger-0", FakeClock()))


async def take(stream: AsyncIterator[Sample], n: int) -> list[Sample]:
    return [await asyncio.wait_for(anext(stream), 5) for _ in range(n)]


async def test_lines_become_geiger_readings_and_garbage_is_counted_not_stored(pty: Pty) -> None:
    d = driver(pty, tube_type="SBM-20")
    stream = d.subscribe()
    first = asyncio.ensure_future(anext(stream))  # opens the port
    await asyncio.sleep(0.05)
    pty.send(
        "# mightyohm.com Geiger Counter 1.00\r\n"
        "\r\n"
        "CPS, 1, CPM, 17, uSv/hr, 0.09, SLOW\r\n"
        "CPS, 1, CPM, ??, uSv/hr, 0.09, SLOW\r\n"  # garbled on the wire
        "PS, 0, CPM, 1\r\n"  # a line cut short by a reconnect
        "CPS, 300, CPM, 18000, uSv/hr, 102.60, INST\r\n"
    )
    samples = [await asyncio.wait_for(first, 5), *await take(stream, 1)]
    assert samples == [
        Sample(
            {"cps": 1, "cpm": 17, "usv_per_hour": 0.09, "mode": "SLOW", "tube_type": "SBM-20"},
            START,
            sensor_type="geiger",
        ),
        Sample(
            {
                "cps": 300,
                "cpm": 18000,
                "usv_per_hour": 102.6,
                "mode": "INST",
                "tube_type": "SBM-20",
            },
            START,
            sensor_type="geiger",
        ),
    ]
    assert (d.malformed, d.lines) == (2, 2)
    assert set(samples[0].payload) <= set(VOCABULARY["geiger"])
    await stream.aclose()


async def test_a_line_split_across_reads_and_an_endless_line(pty: Pty) -> None:
    d = driver(pty)
    stream = d.subscribe()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    pty.send("CPS, 2, CPM, 3")
    await asyncio.sleep(0.05)
    pty.send("4, uSv/hr, 0.19, SLOW\r\n")
    (sample,) = [await asyncio.wait_for(first, 5)]
    assert sample.payload == {"cps": 2, "cpm": 34, "usv_per_hour": 0.19, "mode": "SLOW"}
    pty.send("x" * 600 + "\r\nCPS, 0, CPM, 0, uSv/hr, 0.00, SLOW\r\n")
    (sample,) = await take(stream, 1)
    assert sample.payload["cpm"] == 0
    assert d.malformed >= 1
    await stream.aclose()


async def test_an_unplugged_device_fails_the_stream_and_a_replugged_one_is_read_again(
    pty: Pty,
) -> None:
    d = driver(pty)
    stream = d.subscribe()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    pty.send("CPS, 1, CPM, 20, uSv/hr, 0.11, SLOW\r\n")
    await asyncio.wait_for(first, 5)
    pty.unplug()
    with pytest.raises(serial.SerialException):
        await asyncio.wait_for(anext(stream), 5)
    await stream.aclose()
    pty.plug()  # the scheduler subscribes again after its backoff: the port is reopened
    stream = d.subscribe()
    again = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    pty.send("CPS, 0, CPM, 21, uSv/hr, 0.11, SLOW\r\n")
    assert (await asyncio.wait_for(again, 5)).payload["cpm"] == 21
    assert d.opened == 2
    await stream.aclose()


async def test_a_missing_port_fails_at_subscribe(tmp_path: Path) -> None:
    config = MightyOhmConfig(port=str(tmp_path / "nope"))
    d = MightyOhmDriver(config, SensorContext("n-1", "geiger", "geiger-0", FakeClock()))
    with pytest.raises(serial.SerialException):
        await anext(d.subscribe())


def test_mightyohm_registers_through_the_entry_point() -> None:
    assert load_driver("mightyohm") is MightyOhmDriver


def test_a_missing_library_fails_the_config_check_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from beamwarden.agent.errors import DriverError

    monkeypatch.setitem(sys.modules, "serial", None)  # as if pyserial were not installed
    monkeypatch.delitem(sys.modules, "beamwarden.agent.drivers.mightyohm")
    with pytest.raises(DriverError) as caught:
        load_driver("mightyohm")
    assert str(caught.value) == (
        "driver 'mightyohm' needs the Python package 'pyserial', which is not installed "
        "(pip install 'beamwarden[agent]' installs every driver's library)"
    )
