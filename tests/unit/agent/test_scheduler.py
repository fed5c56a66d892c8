"""The scheduler on a fake clock: intervals, isolation of failing and hanging drivers, one log
line on failure and one on recovery, streaming resubscription, and a full or broken queue."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from beamwarden.agent.config import SensorSpec
from beamwarden.agent.drivers.base import DriverClass
from beamwarden.agent.queue import QueueWriter, ReadingQueue
from beamwarden.agent.scheduler import Scheduler
from tests.unit.agent.fakes import FakeClock, NoConfig, ScriptedDriver, StreamDriver, inline


def spec(
    sensor_id: str, driver: DriverClass, interval_s: float = 1.0, timeout_s: float = 2.0
) -> SensorSpec:
    return SensorSpec(
        index=1,
        sensor_type="sim",
        sensor_id=sensor_id,
        driver_name=driver.info.name,
        driver_class=driver,
        driver_config=NoConfig(),
        interval_s=interval_s,
        timeout_s=timeout_s,
        enabled=True,
    )


def scripted(fail: set[int] = set(), hang: set[int] = set()) -> type[ScriptedDriver]:  # noqa: B006
    return type(
        "Scripted", (ScriptedDriver,), {"fail_at": frozenset(fail), "hang_at": frozenset(hang)}
    )


@dataclass
class Running:
    scheduler: Scheduler
    queue: ReadingQueue
    clock: FakeClock
    stop: asyncio.Event
    task: asyncio.Task[None]
    queued: list[int]

    def readings(self, sensor_id: str) -> list[dict[str, Any]]:
        out = []
        for item in self.queue.peek(100_000):
            reading = json.loads(item.body)
            if reading["sensor_id"] == sensor_id:
                out.append(reading)
        return out

    async def finish(self) -> None:
        self.stop.set()
        await self.clock.advance(0)
        await self.task


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    running: list[Running] = []

    async def go(
        *specs: SensorSpec, max_rows: int = 100_000, queue: ReadingQueue | None = None
    ) -> Running:
        clock = FakeClock()
        queue = queue or ReadingQueue(tmp_path / "q.sqlite3", max_rows=max_rows)
        writer = QueueWriter(queue, clock, offload=inline)
        queued: list[int] = []
        scheduler = Scheduler(specs, "n-1", writer, clock, on_queued=queued.append)
        stop = asyncio.Event()
        r = Running(scheduler, queue, clock, stop, asyncio.create_task(scheduler.run(stop)), queued)
        running.append(r)
        await clock.advance(0)
        return r

    yield go
    for r in running:
        if not r.task.done():
            await r.finish()


async def test_each_driver_is_read_on_its_own_interval(start: Callable[..., Any]) -> None:
    r = await start(spec("fast", ScriptedDriver, 1.0), spec("slow", ScriptedDriver, 2.5))
    await r.clock.advance(5.0)
    assert r.scheduler.drivers["fast"].reads == [0, 1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    assert r.scheduler.drivers["slow"].reads == [0, 2.5, 5.0]  # type: ignore[attr-defined]
    fast = r.readings("fast")
    assert [x["payload"]["n"] for x in fast] == [0, 1, 2, 3, 4, 5]
    assert fast[1] == {
        "node_id": "n-1",
        "sensor_type": "sim",
        "sensor_id": "fast",
        "payload": {"n": 1},
        "timestamp": "2026-11-22T12:00:01Z",
    }
    assert sum(r.queued) == 9
    await r.finish()
    assert all(d.closed for d in r.scheduler.drivers.values())  # type: ignore[attr-defined]


async def test_a_failing_driver_backs_off_logs_once_and_recovers_once(
    start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "beamwarden.agent.scheduler")
    r = await start(spec("bad", scripted(fail={0, 1, 2, 3})), spec("good", ScriptedDriver))
    await r.clock.advance(20.0)
    # failures at t=0, then backoff 1, 2, 4, 8 s: reads at 0, 1, 3, 7; the fifth (t=15) works
    assert r.scheduler.drivers["bad"].reads[:6] == [0, 1, 3, 7, 15, 16]  # type: ignore[attr-defined]
    assert len(r.readings("good")) == 21  # never held up by its neighbour
    messages = [rec.getMessage() for rec in caplog.records]
    assert messages == [
        "sensor[1] bad (scripted) fails: OSError: read 0 failed; retrying with backoff "
        "(logged again when it recovers)",
        "sensor[1] bad (scripted) recovered after 4 failed attempts in 15 s",
    ]
    health = r.scheduler.health["bad"]
    assert (health.ok, health.failures_total, health.last_error) == (
        True,
        4,
        "OSError: read 3 failed",
    )


async def test_a_hanging_read_times_out_and_does_not_stop_the_others(
    start: Callable[..., Any],
) -> None:
    r = await start(
        spec("stuck", scripted(hang={0, 1}), timeout_s=2.0), spec("good", ScriptedDriver)
    )
    await r.clock.advance(10.0)
    health = r.scheduler.health["stuck"]
    assert health.failures_total == 2
    assert health.last_error is not None
    assert health.last_error.startswith("TimeoutError")
    # hung 0-2, backoff 1 → read at 3 hangs to 5, backoff 2 → read at 7 works, then every second
    assert r.scheduler.drivers["stuck"].reads == [0, 3, 7, 8, 9, 10]  # type: ignore[attr-defined]
    assert len(r.readings("good")) == 11


async def test_a_driver_that_cannot_be_built_is_retried_without_harming_others(
    start: Callable[..., Any],
) -> None:
    class Broken(ScriptedDriver):
        def __init__(self, config: Any, context: Any) -> None:
            raise OSError("no such device")

    r = await start(spec("broken", Broken), spec("good", ScriptedDriver))
    await r.clock.advance(3.0)
    assert r.scheduler.health["broken"].failures_total == 3  # t=0, 1, 3 (backoff 1, 2, 4)
    assert r.scheduler.health["broken"].ok is False
    assert len(r.readings("good")) == 4


async def test_a_streaming_driver_is_subscribed_again_when_its_stream_ends(
    start: Callable[..., Any],
) -> None:
    r = await start(spec("stream", StreamDriver, interval_s=1.0, timeout_s=5.0))
    await r.clock.advance(8.5)
    payloads = [x["payload"] for x in r.readings("stream")]
    # 3 samples (t=1,2,3), end → backoff 1 s → subscribe at 4: samples at 5,6,7, end → 8 → 9…
    assert payloads == [
        {"sub": 1, "k": 0},
        {"sub": 1, "k": 1},
        {"sub": 1, "k": 2},
        {"sub": 2, "k": 0},
        {"sub": 2, "k": 1},
        {"sub": 2, "k": 2},
    ]
    assert r.scheduler.health["stream"].last_error == "ConnectionError: the stream ended"


async def test_a_silent_stream_is_dropped_after_its_timeout(start: Callable[..., Any]) -> None:
    silent = type("Silent", (StreamDriver,), {"per_subscription": 1, "silent_after": True})
    r = await start(spec("quiet", silent, interval_s=1.0, timeout_s=3.0))
    await r.clock.advance(10.0)
    # sample at 1, silent until the timeout at 4, resubscribe at 5, sample at 6, timeout at 9, …
    assert r.scheduler.drivers["quiet"].subscriptions == 3  # type: ignore[attr-defined]
    assert r.scheduler.health["quiet"].last_error == "TimeoutError: no sample for 3 s"


async def test_a_full_queue_drops_the_oldest_and_the_drivers_keep_going(
    start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    r = await start(spec("a", ScriptedDriver), max_rows=3)
    await r.clock.advance(5.0)
    assert [x["payload"]["n"] for x in r.readings("a")] == [3, 4, 5]
    assert r.scheduler.writer.dropped_total == 3
    assert r.queue.stats().dropped_rows == 3
    assert len([rec for rec in caplog.records if "queue full" in rec.getMessage()]) == 1


async def test_a_queue_that_cannot_be_written_loses_readings_counted_and_logged_once(
    start: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = ReadingQueue(tmp_path / "broken.sqlite3")
    failures = {"left": 3}
    original = queue.put_many

    def flaky(bodies: Any, at: float) -> range:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("disk full")
        return original(bodies, at)

    queue.put_many = flaky  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, "beamwarden.agent.scheduler")
    r = await start(spec("a", ScriptedDriver), queue=queue)
    await r.clock.advance(4.0)
    health = r.scheduler.health["a"]
    assert (health.lost_total, health.readings_total, health.ok) == (3, 2, True)
    assert [rec.getMessage() for rec in caplog.records] == [
        "sensor[1] a (scripted): readings cannot be queued and are lost: OSError: disk full "
        "(logged again when it works)",
        "sensor[1] a (scripted): readings are queued again (3 lost meanwhile)",
    ]
