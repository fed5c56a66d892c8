"""Room: agent. The scheduler: every driver in its own task, none able to stop another.

* A polling driver is read every ``interval_ms``; a read that takes longer than ``timeout_ms`` is
  cancelled and counts as a failure. Missed ticks are skipped (counted), never caught up in a burst.
* A streaming driver is iterated; silence longer than ``timeout_ms``, an error or the end of the
  stream closes it, and it is subscribed again after a backoff.
* A failure backs the driver off (interval, 2×, 4×, … up to ``MAX_BACKOFF_S``); one log line when
  a driver starts failing and one when it recovers, never one per attempt (Home Assistant's
  coordinator does the same). A driver that cannot even be built is retried the same way.
* Samples go to the :class:`~beamwarden.agent.queue.QueueWriter`; a reading counts once committed.
  A full queue is not an error here: the queue drops its oldest readings (counted, reported). If
  the queue cannot be written at all (disk full, I/O error) the readings of that read are lost,
  counted per driver and logged once until writing works again — the driver keeps running.

Time comes from the injected :class:`~beamwarden.agent.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from beamwarden.agent.clock import Clock, with_timeout
from beamwarden.agent.config import SensorSpec
from beamwarden.agent.drivers.base import (
    Driver,
    PollingDriver,
    Sample,
    SensorContext,
    StreamingDriver,
)
from beamwarden.agent.push.pacing import Backoff
from beamwarden.agent.queue import QueueWriter, encode_reading

log = logging.getLogger("beamwarden.agent.scheduler")

MAX_BACKOFF_S = 300.0


@dataclass
class DriverHealth:
    """How one ``[[sensor]]`` is doing (telemetry, ``/health``, tests)."""

    label: str
    ok: bool | None = None  # None: not tried yet
    consecutive_failures: int = 0
    failures_total: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    readings_total: int = 0
    lost_total: int = 0
    missed_ticks: int = 0
    store_failing: bool = False


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


class Scheduler:
    def __init__(
        self,
        sensors: Sequence[SensorSpec],
        node_id: str,
        writer: QueueWriter,
        clock: Clock,
        on_queued: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.sensors = [s for s in sensors if s.enabled]
        self.node_id = node_id
        self.writer = writer
        self.clock = clock
        self.on_queued = on_queued
        self.health = {s.sensor_id: DriverHealth(s.label) for s in self.sensors}
        self.drivers: dict[str, Driver] = {}

    # -- health bookkeeping ----------------------------------------------------------------------

    def _failed(self, health: DriverHealth, exc: BaseException) -> None:
        health.failures_total += 1
        health.consecutive_failures += 1
        health.last_error = describe(exc)
        if health.ok is not False:
            health.ok = False
            health.failing_since = self.clock.monotonic()
            log.warning(
                "%s fails: %s; retrying with backoff (logged again when it recovers)",
                health.label,
                health.last_error,
            )

    def _succeeded(self, health: DriverHealth) -> None:
        if health.ok is False:
            since = health.failing_since
            if since is None:
                since = self.clock.monotonic()
            log.info(
                "%s recovered after %d failed attempts in %.0f s",
                health.label,
                health.consecutive_failures,
                self.clock.monotonic() - since,
            )
        health.ok = True
        health.consecutive_failures = 0
        health.failing_since = None

    # -- the tasks -------------------------------------------------------------------------------

    def _build(self, spec: SensorSpec) -> Driver:
        driver = self.drivers.get(spec.sensor_id)
        if driver is None:
            context = SensorContext(self.node_id, spec.sensor_type, spec.sensor_id, self.clock)
            driver = spec.driver_class(spec.driver_config, context)
            self.drivers[spec.sensor_id] = driver
        return driver

    async def _queue(
        self, spec: SensorSpec, health: DriverHealth, samples: Sequence[Sample]
    ) -> None:
        bodies: list[bytes] = []
        for sample in samples:
            try:
                bodies.append(
                    encode_reading(self.node_id, spec.sensor_type, spec.sensor_id, sample)
                )
            except TypeError as exc:  # a value JSON cannot carry: the driver's bug, counted
                health.lost_total += 1
                health.last_error = f"unencodable sample: {exc}"
        try:
            seqs = await self.writer.put(bodies)
        except Exception as exc:
            health.lost_total += len(bodies)
            if not health.store_failing:
                health.store_failing = True
                log.error(
                    "%s: readings cannot be queued and are lost: %s (logged again when it works)",
                    health.label,
                    describe(exc),
                )
            return
        if health.store_failing:
            health.store_failing = False
            log.info(
                "%s: readings are queued again (%d lost meanwhile)", health.label, health.lost_total
            )
        health.readings_total += len(seqs)
        self.on_queued(len(seqs))

    def _backoff(self, spec: SensorSpec) -> Backoff:
        return Backoff(spec.interval_s, max(spec.interval_s, MAX_BACKOFF_S), jitter=lambda d: d)

    async def _poll(self, spec: SensorSpec) -> None:
        health = self.health[spec.sensor_id]
        backoff = self._backoff(spec)
        due = self.clock.monotonic()
        while True:
            try:
                driver = self._build(spec)
                assert isinstance(driver, PollingDriver)
                samples = await with_timeout(self.clock, driver.read(), spec.timeout_s)
            except Exception as exc:
                self._failed(health, exc)
                due = self.clock.monotonic() + backoff.next_delay()
            else:
                self._succeeded(health)
                backoff.reset()
                if samples:
                    await self._queue(spec, health, samples)
                due += spec.interval_s
                now = self.clock.monotonic()
                if due < now:
                    missed = int((now - due) // spec.interval_s) + 1
                    health.missed_ticks += missed
                    due += missed * spec.interval_s
            await self.clock.sleep(due - self.clock.monotonic())

    async def _stream(self, spec: SensorSpec) -> None:
        health = self.health[spec.sensor_id]
        backoff = self._backoff(spec)
        while True:
            try:
                driver = self._build(spec)
                assert isinstance(driver, StreamingDriver)
                stream = driver.subscribe()
                try:
                    await self._drain_stream(spec, health, stream, backoff)
                finally:
                    with contextlib.suppress(Exception):
                        await with_timeout(self.clock, stream.aclose(), 5.0)  # type: ignore[attr-defined]
            except Exception as exc:
                self._failed(health, exc)
            await self.clock.sleep(backoff.next_delay())

    async def _drain_stream(
        self,
        spec: SensorSpec,
        health: DriverHealth,
        stream: AsyncIterator[Sample],
        backoff: Backoff,
    ) -> None:
        while True:
            try:
                sample = await with_timeout(self.clock, anext(stream), spec.timeout_s)
            except StopAsyncIteration:
                raise ConnectionError("the stream ended") from None
            except TimeoutError:
                raise TimeoutError(f"no sample for {spec.timeout_s:g} s") from None
            self._succeeded(health)
            backoff.reset()
            await self._queue(spec, health, [sample])

    async def run(self, stop: asyncio.Event) -> None:
        """Run every enabled driver until ``stop`` is set; then cancel them and close drivers."""
        tasks = [
            asyncio.create_task(
                self._poll(spec)
                if issubclass(spec.driver_class, PollingDriver)
                else self._stream(spec),
                name=f"driver {spec.sensor_id}",
            )
            for spec in self.sensors
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for driver in self.drivers.values():
                with contextlib.suppress(Exception):
                    await with_timeout(self.clock, driver.close(), 5.0)
