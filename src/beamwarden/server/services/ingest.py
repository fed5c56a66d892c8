"""Room: server/services. Reading ingestion: validate, authorise, stamp, group-commit.

A ``200`` is a promise (PROTOCOL.md): the answer is sent only after the readings are durably
committed. Concurrent requests share one commit (group commit): a writer takes every batch that is
waiting, writes them in one transaction, and answers them all. ``ingest_writers`` writers may run
at once (one suits SQLite, which has a single writer anyway).
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from beamwarden.fleet import plausible_window
from beamwarden.protocol import Issue, Reading, SchemaViolation, Scope, SensorType, decode_readings
from beamwarden.server.context import current_request_id
from beamwarden.server.errors import Forbidden, Overloaded, ServerError, StoreUnavailable
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.records import (
    EPOCH,
    FLAG_SERVER_TIMESTAMP,
    FLAG_TIMESTAMP_SUSPECT,
    BatchOutcome,
    Principal,
    ReadingBatch,
    to_us,
)
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.ports import ReadingSink
from beamwarden.server.services.registry import NodeRegistry

log = logging.getLogger("beamwarden.ingest")
_US = timedelta(microseconds=1)


@dataclass(slots=True)
class _Pending:
    batch: ReadingBatch
    future: asyncio.Future[BatchOutcome]


class GroupCommitter:
    """Coalesces concurrent batches into shared durable commits."""

    def __init__(
        self,
        sink: ReadingSink,
        metrics: ServerMetrics,
        writers: int = 1,
        max_pending: int = 200_000,
    ):
        self._sink = sink
        self._metrics = metrics
        self._writers = writers
        self._max_pending = max_pending
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._pending_readings = 0
        self._tasks: list[asyncio.Task[None]] = []
        #: most readings one commit takes (bounds a transaction's size and latency)
        self.group_max_readings = 50_000

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer(), name=f"ingest-writer-{i}")
            for i in range(self._writers)
        ]

    async def stop(self, drain_s: float = 10.0) -> None:
        """Finish what is queued (at most ``drain_s`` seconds), then stop the writers."""
        if self._tasks:
            try:
                await asyncio.wait_for(self._queue.join(), drain_s)
            except TimeoutError:
                log.warning("stopping with %d readings not committed", self._pending_readings)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @property
    def pending_readings(self) -> int:
        """Readings accepted for commit and not yet committed."""
        return self._pending_readings

    async def submit(self, batch: ReadingBatch) -> BatchOutcome:
        n = len(batch.readings)
        if self._pending_readings + n > self._max_pending:
            self._metrics.readings_rejected.labels("overloaded").inc(n)
            raise Overloaded(
                f"{self._pending_readings} readings are waiting to be stored; retry shortly"
            )
        future: asyncio.Future[BatchOutcome] = asyncio.get_running_loop().create_future()
        self._pending_readings += n
        self._metrics.ingest_pending.set(self._pending_readings)
        await self._queue.put(_Pending(batch, future))
        return await future

    async def _writer(self) -> None:
        while True:
            first = await self._queue.get()
            group = [first]
            size = len(first.batch.readings)
            while size < self.group_max_readings and not self._queue.empty():
                item = self._queue.get_nowait()
                group.append(item)
                size += len(item.batch.readings)
            try:
                await self._commit(group, size)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit(self, group: list[_Pending], size: int) -> None:
        started = time.perf_counter()
        try:
            outcomes = await self._sink.write_readings([p.batch for p in group])
        except Exception as exc:  # every waiting request must get an answer
            if not isinstance(exc, ServerError):
                log.exception("group commit failed")
            else:
                self._metrics.db_errors.labels("write_readings").inc()
            for p in group:
                if not p.future.done():
                    p.future.set_exception(exc)
        else:
            for p, outcome in zip(group, outcomes, strict=True):
                if not p.future.done():
                    p.future.set_result(outcome)
            self._metrics.commit_latency.observe(time.perf_counter() - started)
            self._metrics.commit_group_size.observe(len(group))
        finally:
            self._pending_readings -= size
            self._metrics.ingest_pending.set(self._pending_readings)


class DiscardSink:
    """A sink that stores nothing: only for measuring what validation costs (``ingest_sink``)."""

    async def write_readings(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        return [BatchOutcome(len(b.readings), 0) for b in batches]


class IngestService:
    def __init__(
        self,
        committer: GroupCommitter,
        registry: NodeRegistry,
        activity: ActivityLog,
        clock: Clock,
        metrics: ServerMetrics,
        max_batch: int = 10_000,
    ):
        self._committer = committer
        self._registry = registry
        self._activity = activity
        self._clock = clock
        self._metrics = metrics
        self._max_batch = max_batch

    async def ingest(self, principal: Principal, body: bytes) -> BatchOutcome:
        """Decode, check and durably store one request's readings (all or nothing)."""
        if principal.kind != "node":
            raise Forbidden("readings are sent with a node token")
        source = principal.node_id
        assert source is not None
        try:
            readings = decode_readings(body, default_node_id=source, max_batch=self._max_batch)
        except SchemaViolation:
            self._metrics.readings_rejected.labels("schema").inc()
            raise
        relay = Scope.RELAY in principal.scopes
        issues: list[Issue] = []
        for index, reading in enumerate(readings):
            node = reading.node_id
            if node == source:
                continue
            if not relay:
                raise Forbidden(
                    f"reading {index} names node {node!r}; this token may write only for "
                    f"{source!r} (a relay token may write for other registered nodes)"
                )
            if not await self._registry.exists(node):
                issues.append(Issue(index, "node_id", f"{node!r} is not a registered node"))
        if issues:
            self._metrics.readings_rejected.labels("unknown_node").inc()
            raise SchemaViolation(
                issues, f"{len(issues)} readings name unregistered nodes; nothing was stored"
            )
        if not readings:
            return BatchOutcome(0, 0)

        received = self._clock.now()
        received_us = to_us(received)
        ts_us: list[int] = []
        flags: list[int] = []
        lo, hi = plausible_window(received)
        for reading in readings:
            ts = reading.timestamp
            if ts is None:
                ts_us.append(received_us)
                flags.append(FLAG_SERVER_TIMESTAMP)
            else:
                ts_us.append((ts - EPOCH) // _US)
                flags.append(0 if lo <= ts <= hi else FLAG_TIMESTAMP_SUSPECT)
        batch = ReadingBatch(source, received_us, readings, ts_us, flags, current_request_id())
        try:
            outcome = await self._committer.submit(batch)
        except StoreUnavailable:
            self._metrics.readings_rejected.labels("database_unavailable").inc(len(readings))
            raise
        self._count(readings, outcome)
        if outcome.conflicts:
            await self._activity.record(
                "reading_conflict",
                f"{len(outcome.conflicts)} known reading ids arrived with a different payload; "
                "the first version is kept",
                node_id=source,
                actor=f"node:{source}",
                data={"reading_ids": list(outcome.conflicts[:100])},
            )
        return outcome

    def _count(self, readings: list[Reading], outcome: BatchOutcome) -> None:
        self._metrics.ingest_batches.inc()
        self._metrics.readings_accepted.inc(outcome.accepted)
        if outcome.duplicates:
            self._metrics.readings_duplicate.inc(outcome.duplicates)
        if outcome.conflicts:
            self._metrics.readings_conflict.inc(len(outcome.conflicts))
        other = 0
        for kind, n in Counter(map(_SENSOR_TYPE, readings)).items():
            if kind in _KNOWN_TYPES:
                self._metrics.readings_received.labels(kind).inc(n)
            else:
                other += n
        if other:
            self._metrics.readings_received.labels("other").inc(other)


_KNOWN_TYPES = frozenset(t.value for t in SensorType)
_SENSOR_TYPE = operator.attrgetter("sensor_type")
