"""Unit tests of the obs logging handler, context fields and helpers (in-memory store; the writer
thread is waited for with flush(), never with sleep)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence

import pytest

from beamwarden.obs import (
    Level,
    LogQuery,
    LogRecord,
    ManualClock,
    MemoryStore,
    MetricRegistry,
    ObsHandler,
    bind,
    bound_fields,
    error,
    info,
    log,
    log_exception,
    timed,
    warning,
)

T0 = 1_800_000_000.0


class GatedStore(MemoryStore):
    """Blocks each write until ``gate`` is set, so that the queue fills up deterministically."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def append_logs(self, records: Sequence[LogRecord]) -> None:
        self.entered.set()
        assert self.gate.wait(10)
        super().append_logs(records)


class FailingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def append_logs(self, records: Sequence[LogRecord]) -> None:
        if self.fail:
            raise OSError("disk full")
        super().append_logs(records)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(f"test.obs.{uuid.uuid4().hex}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def attach(logger: logging.Logger, store: MemoryStore, **options: object) -> ObsHandler:
    handler = ObsHandler(store, **options)  # type: ignore[arg-type]
    logger.addHandler(handler)
    return handler


def stored(store: MemoryStore) -> list[LogRecord]:
    return store.read_logs(LogQuery(limit=10**6))


def test_records_arrive_with_message_extras_and_context(logger: logging.Logger) -> None:
    store = MemoryStore()
    handler = attach(logger, store)
    with bind(request_id="r-1"):
        logger.info("hello %s", "world", extra={"user": "bob", "obj": ValueError("v")})
        with bind(request_id="r-2", node="n-7"):
            logger.warning("inner", extra={"obs_attrs": {"name": "clash-free", "n": 2}})
    logger.debug("after")
    assert handler.flush()
    records = stored(store)
    assert [(r.level, r.message, r.logger == logger.name) for r in records] == [
        (Level.INFO, "hello world", True),
        (Level.WARNING, "inner", True),
        (Level.DEBUG, "after", True),
    ]
    assert records[0].attrs == {"request_id": "r-1", "user": "bob", "obj": "v"}
    assert records[1].attrs == {"request_id": "r-2", "node": "n-7", "name": "clash-free", "n": 2}
    assert records[2].attrs == {}
    assert handler.written == 3
    assert handler.dropped == 0


def test_exceptions_are_stored_with_their_traceback(logger: logging.Logger) -> None:
    store = MemoryStore()
    handler = attach(logger, store)
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("lookup failed")
    logger.info("with stack", stack_info=True)
    handler.flush()
    failed, stacked = stored(store)
    assert failed.level is Level.ERROR
    assert str(failed.attrs["exception"]).startswith("Traceback (most recent call last)")
    assert "KeyError: 'missing'" in str(failed.attrs["exception"])
    assert "Stack (most recent call last)" in str(stacked.attrs["stack"])


def test_nothing_is_dropped_below_the_bound_and_drops_are_counted_above_it(
    logger: logging.Logger,
) -> None:
    store = GatedStore()
    registry = MetricRegistry(clock=ManualClock(T0))
    handler = attach(
        logger, store, queue_size=5, batch_size=1, registry=registry, clock=ManualClock(T0)
    )
    logger.info("first")  # taken by the writer, which then waits in the store
    assert store.entered.wait(10)
    for i in range(5):
        logger.info("queued %d", i)  # exactly the bound: nothing dropped
    assert handler.dropped == 0
    for i in range(3):
        logger.info("over %d", i)
    assert handler.dropped == 3
    store.gate.set()
    assert handler.flush()
    records = stored(store)
    reports = [r for r in records if r.logger == "beamwarden.obs"]
    assert [r.message for r in records if r not in reports] == ["first"] + [
        f"queued {i}" for i in range(5)
    ]
    (report,) = reports
    assert report == LogRecord(
        T0,
        Level.WARNING,
        "obs: 3 log records dropped: the queue was full (5 records)",
        "beamwarden.obs",
        {"dropped": 3, "dropped_total": 3, "queue_size": 5},
        report.id,
    )
    totals = {s.name: s.value for s in registry.latest_samples()}
    assert totals["obs_log_records_dropped_total"] == 3.0
    assert totals["obs_log_records_written_total"] == 7.0


def test_a_failing_store_loses_batches_but_not_the_handler(
    logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    store = FailingStore()
    handler = attach(logger, store)
    logger.info("lost")
    handler.flush()
    assert (handler.lost, handler.write_errors) == (1, 1)
    assert "disk full" in capsys.readouterr().err
    store.fail = False
    logger.info("kept")
    handler.flush()
    assert [r.message for r in stored(store)] == ["kept"]


def test_close_writes_what_is_queued_and_later_records_are_counted(logger: logging.Logger) -> None:
    store = MemoryStore()
    handler = attach(logger, store, flush_interval=60.0)
    for i in range(10):
        logger.info("r%d", i)
    handler.close()
    assert len(stored(store)) == 10
    logger.info("too late")
    assert handler.dropped == 1
    assert handler.flush() is True


def test_the_handler_lock_is_not_taken_per_record(logger: logging.Logger) -> None:
    store = MemoryStore()
    handler = attach(logger, store)
    assert handler.lock is not None
    with handler.lock:  # another thread holding it would not block callers
        logger.info("not blocked")
    handler.flush()
    assert len(stored(store)) == 1


def test_filters_still_apply(logger: logging.Logger) -> None:
    store = MemoryStore()
    handler = attach(logger, store)
    handler.addFilter(lambda record: record.levelno >= logging.WARNING)
    logger.info("filtered out")
    logger.error("kept")
    handler.flush()
    assert [r.message for r in stored(store)] == ["kept"]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        ObsHandler(MemoryStore(), queue_size=0)


def test_context_fields_follow_asyncio_tasks() -> None:
    async def child() -> object:
        return dict(bound_fields())

    async def main() -> tuple[object, object]:
        with bind(job="j-1"):
            inside = await asyncio.create_task(child())
        return inside, dict(bound_fields())

    assert asyncio.run(main()) == ({"job": "j-1"}, {})


def test_helpers_log_with_attributes(logger: logging.Logger) -> None:
    store = MemoryStore()
    handler = attach(logger, store)
    info("started", logger=logger, name="not a clash", port=8000)
    warning("slow", logger=logger.name)
    error("failed", logger=logger, code=3)
    log("debug", "details", logger=logger)
    try:
        raise RuntimeError("bad")
    except RuntimeError:
        log_exception("crashed", logger=logger, step="load")
    handler.flush()
    records = stored(store)
    assert [(r.level.label, r.message) for r in records] == [
        ("info", "started"),
        ("warning", "slow"),
        ("error", "failed"),
        ("debug", "details"),
        ("error", "crashed"),
    ]
    assert records[0].attrs == {"name": "not a clash", "port": 8000}
    assert records[4].attrs["step"] == "load"
    assert "RuntimeError: bad" in str(records[4].attrs["exception"])


def test_timed_logs_the_duration_and_failures(logger: logging.Logger) -> None:
    store = MemoryStore()
    handler = attach(logger, store)
    ticks = iter([1.0, 1.25, 2.0, 2.5, 3.0, 3.125])
    timer = lambda: next(ticks)  # noqa: E731

    with timed("load config", logger=logger, timer=timer, path="/etc/x"):
        pass

    @timed("compute", logger=logger, timer=timer, level="debug")
    def compute(x: int) -> int:
        return x * 2

    assert compute(21) == 42
    with pytest.raises(ValueError, match="nope"), timed("explode", logger=logger, timer=timer):
        raise ValueError("nope")
    handler.flush()
    records = stored(store)
    assert [(r.level.label, r.message) for r in records] == [
        ("info", "load config"),
        ("debug", "compute"),
        ("error", "explode"),
    ]
    assert records[0].attrs == {"path": "/etc/x", "duration_ms": 250.0}
    assert records[1].attrs == {"duration_ms": 500.0}
    assert records[2].attrs["duration_ms"] == 125.0
    assert records[2].attrs["failed"] is True
    assert "ValueError: nope" in str(records[2].attrs["exception"])
