"""Room: agent. Time, injected: the agent reads the clock and sleeps only through a :class:`Clock`.

Tests pass a fake clock whose ``sleep`` returns when the test advances time, so nothing in the
agent's unit tests waits for real time. :func:`with_timeout` races an awaitable against
``clock.sleep`` so that timeouts, too, follow the injected clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class Clock(Protocol):
    """Where the agent gets the time from."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (intervals, backoff, ages within one process)."""
        ...

    def now(self) -> datetime:
        """The wall-clock time, in UTC (reading timestamps, heartbeats)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (returns at once for ``seconds <= 0``)."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class Offload(Protocol):
    """Runs blocking work (SQLite commits) off the event loop: ``asyncio.to_thread`` in the agent,
    an inline call in tests so that they stay deterministic."""

    def __call__(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Run ``func(*args, **kwargs)``; await its result."""
        ...


async def with_timeout(clock: Clock, awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable``; cancel it and raise :class:`TimeoutError` after ``seconds`` on ``clock``."""
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        timer.cancel()
        raise
    if work.done():
        timer.cancel()
        return work.result()
    # Not awaited: a driver that ignores cancellation must not hang its caller too.
    work.add_done_callback(_forget)
    work.cancel()
    raise TimeoutError(f"no answer within {seconds:g} s")


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def sleep_or_wake(clock: Clock, seconds: float, *wake: asyncio.Event) -> bool:
    """Sleep ``seconds`` on ``clock`` but return early when any ``wake`` event is set; True if
    woken."""
    if any(event.is_set() for event in wake):
        return True
    waiters = [asyncio.ensure_future(event.wait()) for event in wake]
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({*waiters, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        timer.cancel()
    return any(event.is_set() for event in wake)
