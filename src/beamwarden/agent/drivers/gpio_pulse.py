"""Room: agent (drivers). ``gpio_pulse``: a pulse counter on a GPIO line (libgpiod; event-driven).

For counters that only give pulses (a Geiger tube board's INT output, a rain gauge, a water or
energy meter's S0 output). The line is requested with edge detection through libgpiod's character
device (the ``gpiod`` package, v2 API); the kernel timestamps and queues every edge, the event
loop wakes when the request's file descriptor is readable (``add_reader``: no polling, no thread)
and the driver counts. Counting uses the kernel's per-line sequence numbers, so edges the kernel
had to drop from a full event buffer are still counted (and reported in ``overflowed``).

Every ``report_every_s`` the driver yields one reading with the window's count:
``sensor_type = "geiger"`` gives ``counts``, ``cps`` and ``cpm`` (PROTOCOL.md's vocabulary), any
other type ``pulses`` and ``pulses_per_s``. A window with no pulse is a real zero (the line is
watched), unlike a read that failed.

Touches: the GPIO chip device named in the config (``/dev/gpiochip0``), one line of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Literal, Protocol

import gpiod
from gpiod.line import Bias, Edge
from pydantic import Field

from beamwarden.agent.clock import sleep_or_wake
from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    Sample,
    SensorContext,
    StreamingDriver,
    Transport,
    Value,
)

EDGES = {"rising": Edge.RISING, "falling": Edge.FALLING, "both": Edge.BOTH}
BIASES = {
    "as_is": Bias.AS_IS,
    "disabled": Bias.DISABLED,
    "pull_up": Bias.PULL_UP,
    "pull_down": Bias.PULL_DOWN,
}


class EdgeEventLike(Protocol):
    @property
    def line_seqno(self) -> int: ...


class LineRequestLike(Protocol):
    """What the driver uses of :class:`gpiod.LineRequest` (tests pass a fake line)."""

    @property
    def fd(self) -> int: ...

    def wait_edge_events(self, timeout: timedelta | float | None = None) -> bool: ...

    def read_edge_events(self, max_events: int | None = None) -> Sequence[EdgeEventLike]: ...

    def release(self) -> None: ...


class GpioPulseConfig(DriverConfig):
    chip: str = Field("/dev/gpiochip0", min_length=1)
    #: the line's offset on the chip (BCM number on a Raspberry Pi) or its name ("GPIO17")
    line: int | str
    edge: Literal["rising", "falling", "both"] = "falling"
    bias: Literal["as_is", "disabled", "pull_up", "pull_down"] = "as_is"
    #: the kernel ignores edges closer together than this (a mechanical contact's bounce)
    debounce_us: int = Field(0, ge=0, le=1_000_000)
    report_every_s: float = Field(60.0, ge=1, le=86_400)

    def quiet_s(self) -> float:
        return self.report_every_s


def request_line(config: GpioPulseConfig) -> LineRequestLike:
    settings = gpiod.LineSettings(
        edge_detection=EDGES[config.edge],
        bias=BIASES[config.bias],
        debounce_period=timedelta(microseconds=config.debounce_us),
    )
    request: LineRequestLike = gpiod.request_lines(
        config.chip, consumer="pi-log", config={config.line: settings}
    )
    return request


class GpioPulseDriver(StreamingDriver):
    info = DriverInfo(
        name="gpio_pulse",
        transport=Transport.GPIO,
        config_model=GpioPulseConfig,
        summary="pulses counted on a GPIO line (libgpiod edge events), one reading per window",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, GpioPulseConfig)
        self.settings = config
        #: how the line is requested (tests: a fake line)
        self.open_line: Callable[[GpioPulseConfig], LineRequestLike] = request_line
        self.pulses_total = 0
        self.overflowed = 0

    def _payload(self, count: int, seconds: float) -> dict[str, Value]:
        rate = count / seconds if seconds > 0 else 0.0
        if self.context.sensor_type == "geiger":
            return {"counts": count, "cps": round(rate, 4), "cpm": round(rate * 60, 2)}
        return {"pulses": count, "pulses_per_s": round(rate, 4)}

    async def subscribe(self) -> AsyncIterator[Sample]:
        clock = self.context.clock
        request = self.open_line(self.settings)
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(request.fd, readable.set)
        seqno = 0  # the kernel numbers a request's edges from 1
        count = 0
        started = clock.monotonic()
        window_end = started + self.settings.report_every_s
        try:
            while True:
                await sleep_or_wake(clock, window_end - clock.monotonic(), readable)
                # a readiness callback may come twice for one batch: read only what is queued
                if readable.is_set():
                    readable.clear()
                    events = request.read_edge_events() if request.wait_edge_events(0) else ()
                    if events:
                        pulses = events[-1].line_seqno - seqno
                        self.overflowed += max(0, pulses - len(events))
                        seqno = events[-1].line_seqno
                        count += pulses
                        self.pulses_total += pulses
                now = clock.monotonic()
                if now >= window_end:
                    yield Sample(self._payload(count, now - started), clock.now())
                    count = 0
                    started = now
                    window_end = now + self.settings.report_every_s
        finally:
            loop.remove_reader(request.fd)
            request.release()
