"""Test doubles for the agent: a clock whose time moves only when the test says so, an inline
offload (no threads, so a test is deterministic), and small drivers that misbehave on request."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    PollingDriver,
    Sample,
    StreamingDriver,
    Transport,
)

T = TypeVar("T")
START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


async def settle(rounds: int = 200) -> None:
    """Let every runnable task run until all wait for the fake clock (or an event)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def inline(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


class FakeClock:
    """Monotonic time starts at 0; ``now()`` is START plus it. ``advance`` wakes sleepers in order."""

    def __init__(self, start: datetime = START) -> None:
        self.t = 0.0
        self.start = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        end = self.t + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            deadline, _, future = heapq.heappop(self._sleepers)
            self.t = max(self.t, deadline)
            if not future.done():
                future.set_result(None)
            await settle()
        self.t = end
        await settle()


class NoConfig(DriverConfig):
    pass


class ScriptedDriver(PollingDriver):
    """Reads return ``{"n": k}``; ``fail_at`` reads raise, ``hang_at`` reads never return."""

    info = DriverInfo("scripted", Transport.SIMULATED, NoConfig)
    fail_at: frozenset[int] = frozenset()
    hang_at: frozenset[int] = frozenset()

    def __init__(self, config: DriverConfig, context: Any) -> None:
        super().__init__(config, context)
        self.reads: list[float] = []
        self.closed = False

    async def read(self) -> Sequence[Sample]:
        k = len(self.reads)
        self.reads.append(self.context.clock.monotonic())
        if k in self.hang_at:
            await asyncio.Event().wait()
        if k in self.fail_at:
            raise OSError(f"read {k} failed")
        return [self.sample({"n": k})]

    async def close(self) -> None:
        self.closed = True


class StreamDriver(StreamingDriver):
    """Yields ``per_subscription`` samples one clock second apart, then ends (or goes silent)."""

    info = DriverInfo("stream", Transport.SIMULATED, NoConfig)
    per_subscription = 3
    silent_after = False

    def __init__(self, config: DriverConfig, context: Any) -> None:
        super().__init__(config, context)
        self.subscriptions = 0

    async def subscribe(self) -> AsyncIterator[Sample]:
        self.subscriptions += 1
        for k in range(self.per_subscription):
            await self.context.clock.sleep(1)
            yield self.sample({"sub": self.subscriptions, "k": k})
        if self.silent_after:
            await asyncio.Event().wait()
