"""The GPIO pulse counter on a fake line: a pipe stands in for the line request's file descriptor
(readable when the kernel has edges queued), edges carry the kernel's sequence numbers, and time
is the fake clock's. One reading per window; edges the kernel dropped are still counted."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest

from beamwarden.agent.drivers import Sample, SensorContext, load_driver
from beamwarden.agent.drivers.gpio_pulse import GpioPulseConfig, GpioPulseDriver, request_line
from beamwarden.protocol import VOCABULARY
from tests.unit.agent.fakes import START, FakeClock


@dataclass(frozen=True)
class Edge:
    line_seqno: int


class FakeLine:
    """Edges queue in the 'kernel'; the fd is readable while any wait (a byte in a pipe)."""

    def __init__(self, buffer_size: int = 16) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        self.queued: list[Edge] = []
        self.seqno = 0
        self.buffer_size = buffer_size
        self.released = False

    @property
    def fd(self) -> int:
        return self.read_end

    def pulse(self, n: int = 1) -> None:
        for _ in range(n):
            self.seqno += 1
            self.queued.append(Edge(self.seqno))
        del self.queued[: -self.buffer_size]  # a full kernel buffer drops the oldest edges
        os.write(self.write_end, b"!")

    def wait_edge_events(self, timeout: timedelta | float | None = None) -> bool:
        assert timeout == 0  # never blocks the event loop
        return bool(self.queued)

    def read_edge_events(self, max_events: int | None = None) -> Sequence[Edge]:
        assert self.queued, "would block"
        os.read(self.read_end, 4096)
        out, self.queued = self.queued, []
        return out

    def release(self) -> None:
        self.released = True
        os.close(self.read_end)
        os.close(self.write_end)


def driver(clock: FakeClock, sensor_type: str, line: FakeLine, **keys: object) -> GpioPulseDriver:
    config = GpioPulseConfig.model_validate({"line": 17, **keys})
    d = GpioPulseDriver(config, SensorContext("n-1", sensor_type, "pulses-0", clock))
    d.open_line = lambda settings: line
    return d


async def wake() -> None:
    for _ in range(20):  # the event loop sees the fd and runs the driver
        await asyncio.sleep(0.001)


async def test_pulses_are_counted_per_window_as_geiger_counts() -> None:
    clock, line = FakeClock(), FakeLine()
    d = driver(clock, "geiger", line, report_every_s=60)
    stream = d.subscribe()
    first = asyncio.ensure_future(anext(stream))
    await clock.advance(1)
    line.pulse(30)  # 30 edges, of which the kernel kept the last 16
    await wake()
    await clock.advance(20)
    line.pulse(6)
    await wake()
    await clock.advance(39)
    assert await first == Sample(
        {"counts": 36, "cps": 0.6, "cpm": 36.0}, START + timedelta(seconds=60)
    )
    assert (d.pulses_total, d.overflowed) == (36, 14)
    second = asyncio.ensure_future(anext(stream))
    await clock.advance(60)  # a quiet minute is a real zero: the line was watched
    assert (await second).payload == {"counts": 0, "cps": 0.0, "cpm": 0.0}
    assert set((await second).payload) <= set(VOCABULARY["geiger"])
    await stream.aclose()
    assert line.released


async def test_other_types_count_pulses() -> None:
    clock, line = FakeClock(), FakeLine()
    d = driver(clock, "rain", line, report_every_s=10)
    stream = d.subscribe()
    first = asyncio.ensure_future(anext(stream))
    await clock.advance(0)
    line.pulse(5)
    await wake()
    await clock.advance(10)
    assert (await first).payload == {"pulses": 5, "pulses_per_s": 0.5}
    await stream.aclose()


def test_the_config_and_the_real_library_without_a_chip() -> None:
    with pytest.raises(ValueError, match="edge"):
        GpioPulseConfig.model_validate({"line": 17, "edge": "up"})
    with pytest.raises(FileNotFoundError):  # gpiod itself: there is no such chip here
        request_line(GpioPulseConfig(chip="/dev/gpiochip-none", line=17))
    assert load_driver("gpio_pulse") is GpioPulseDriver
