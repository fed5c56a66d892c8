"""Unit tests of retention, the runtime's ticks (time injected) and the ring buffer's bounds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from beamwarden.obs import (
    Level,
    LogQuery,
    ManualClock,
    MemoryStore,
    MetricRegistry,
    MetricSample,
    Observability,
    ObsRuntime,
    RetentionPolicy,
    RetentionReport,
    RingBufferStore,
    SampleQuery,
    apply_retention,
    new_log_record,
    new_sample,
)
from beamwarden.obs.memory_store import RECORD_OVERHEAD

T0 = 1_800_000_000.0
HOUR = 3600.0


def fill(store: MemoryStore) -> None:
    store.append_logs(
        [
            new_log_record(level, f"{level.label}@{age}h", ts=T0 - age * HOUR)
            for age in (48, 5, 0)
            for level in (Level.DEBUG, Level.ERROR)
        ]
    )
    store.append_samples(
        [new_sample("g", "gauge", float(age), ts=T0 - age * HOUR) for age in (48, 5, 0)]
    )


def messages(store: MemoryStore) -> list[str]:
    return [r.message for r in store.read_logs(LogQuery(limit=1000))]


def test_retention_by_level_age_and_count() -> None:
    store = MemoryStore()
    fill(store)
    policy = RetentionPolicy(
        log_max_age=24 * HOUR,
        log_max_count=3,
        log_max_age_by_level={Level.DEBUG: 1 * HOUR},
        sample_max_age=24 * HOUR,
        sample_max_count=1,
    )
    assert apply_retention(store, policy, T0) == RetentionReport(logs_removed=3, samples_removed=2)
    assert messages(store) == ["error@5h", "debug@0h", "error@0h"]
    assert [s.value for s in store.read_samples(SampleQuery())] == [0.0]


def test_no_limits_remove_nothing() -> None:
    store = MemoryStore()
    fill(store)
    none = RetentionPolicy(None, None, {}, None, None)
    assert apply_retention(store, none, T0) == RetentionReport(0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        RetentionPolicy(log_max_age=-1)


def test_the_runtime_ticks_when_due() -> None:
    clock = ManualClock(T0)
    registry = MetricRegistry(clock=clock)
    store = MemoryStore()
    fill(store)
    runtime = ObsRuntime(
        store,
        registry=registry,
        retention=RetentionPolicy(log_max_age=24 * HOUR, sample_max_age=24 * HOUR),
        clock=clock,
        snapshot_interval=10,
        retention_interval=60,
    )
    jobs = registry.counter("jobs_total")
    jobs.inc()
    runtime.tick()
    assert runtime.last_retention == RetentionReport(2, 1)
    assert [(s.name, s.value) for s in store.read_samples(SampleQuery(since=T0))] == [
        ("g", 0.0),
        ("jobs_total", 1.0),
    ]
    jobs.inc()
    clock.advance(5)
    runtime.tick()  # nothing due yet
    assert len(store.read_samples(SampleQuery(since=T0))) == 2
    clock.advance(5)
    runtime.tick()
    history = store.read_samples(SampleQuery(since=T0, name="jobs_total"))
    assert [(s.ts, s.value) for s in history] == [(T0, 1.0), (T0 + 10, 2.0)]
    removed = {
        s.labels: s.value
        for s in registry.latest_samples()
        if s.name == "obs_retention_removed_total"
    }
    assert removed == {(("what", "logs"),): 2.0, (("what", "samples"),): 1.0}


class ExplodingStore(MemoryStore):
    def append_samples(self, samples: Sequence[MetricSample]) -> None:
        raise OSError("nope")


def test_a_failing_tick_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    registry = MetricRegistry(clock=ManualClock(T0))
    registry.gauge("x").set(1)
    runtime = ObsRuntime(ExplodingStore(), registry=registry, clock=ManualClock(T0))
    with caplog.at_level(logging.ERROR, "beamwarden.obs"):
        runtime.tick()
    assert runtime.failures == 1
    assert "obs snapshot failed" in caplog.text


def test_the_thread_and_the_task_write_a_last_snapshot_when_stopped() -> None:
    registry = MetricRegistry(clock=ManualClock(T0))
    store = MemoryStore()
    runtime = ObsRuntime(store, registry=registry, snapshot_interval=3600)
    runtime.start()
    registry.gauge("g").set(1)
    runtime.stop()
    assert [s.value for s in store.latest_samples()] == [1.0]

    async def run_then_cancel() -> None:
        task = asyncio.create_task(runtime.run())
        registry.gauge("g").set(2)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_cancel())
    assert [s.value for s in store.latest_samples()] == [2.0]


def test_the_ring_buffer_keeps_the_newest_by_count_and_by_bytes() -> None:
    ring = RingBufferStore(max_logs=5, max_log_bytes=10**9, max_samples=2)
    ring.append_logs([new_log_record("info", str(i), ts=T0 + i) for i in range(12)])
    assert messages(ring) == ["7", "8", "9", "10", "11"]
    ring.append_samples([new_sample("g", "gauge", float(i), ts=T0 + i) for i in range(5)])
    assert [s.value for s in ring.read_samples(SampleQuery())] == [3.0, 4.0]
    stats = ring.stats()
    assert (stats.logs, stats.evicted_logs, stats.samples, stats.evicted_samples) == (5, 7, 2, 3)

    by_bytes = RingBufferStore(max_logs=10**6, max_log_bytes=3 * (RECORD_OVERHEAD + 10))
    by_bytes.append_logs([new_log_record("info", f"{i:010d}", ts=T0) for i in range(10)])
    assert messages(by_bytes) == [f"{i:010d}" for i in (7, 8, 9)]
    assert by_bytes.stats().evicted_logs == 7
    with pytest.raises(ValueError, match="positive"):
        RingBufferStore(max_logs=0)


def test_memory_chunks_hold_many_records_and_find_cursors() -> None:
    store = MemoryStore()
    store.append_logs([new_log_record("info", str(i), ts=T0 + i) for i in range(10_000)])
    assert store.delete_logs(T0 + 4100, levels={Level.INFO}) == 4100
    page = store.read_logs(LogQuery(after_id=9000, limit=3))
    assert [r.message for r in page] == ["9000", "9001", "9002"]
    assert store.trim_logs(10) == 5890


def test_observability_wires_everything_together() -> None:
    clock = ManualClock(T0)
    keep_all = RetentionPolicy(None, None, {}, None, None)
    with Observability.memory(clock=clock, retention=keep_all) as obs:
        logger = logging.getLogger("test.obs.wiring")
        logger.propagate = False
        obs.install(logger, level="debug")
        logger.debug("wired")
        obs.registry.counter("wired_total").inc()
        assert obs.flush()
        obs.runtime.tick()
        assert [r.message for r in obs.store.read_logs(LogQuery())] == ["wired"]
        assert "wired_total" in {s.name for s in obs.store.latest_samples()}
        health = obs._health()
        assert health["logs"] == {
            "queued": 0,
            "queue_size": 100_000,
            "written": 1,
            "dropped": 0,
            "lost": 0,
        }
    assert obs.handler not in logger.handlers
