"""Group commit and the heartbeat buffer, with stub adapters (no database, no clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from beamwarden.protocol import Reading, Telemetry
from beamwarden.server.errors import Overloaded, StoreUnavailable
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.records import BatchOutcome, Heartbeat, NodeRow, Principal, ReadingBatch
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.heartbeats import HeartbeatService
from beamwarden.server.services.ingest import GroupCommitter

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def batch(n: int) -> ReadingBatch:
    reading = Reading("n1", "s", "misc", {"x": 1}, T0)
    return ReadingBatch("n1", 0, [reading] * n, [0] * n, [0] * n)


class SlowSink:
    def __init__(self, fail: bool = False) -> None:
        self.groups: list[int] = []
        self.fail = fail
        self.release = asyncio.Event()

    async def write_readings(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        await self.release.wait()
        self.groups.append(len(batches))
        if self.fail:
            raise StoreUnavailable()
        return [BatchOutcome(len(b.readings), 0) for b in batches]


async def test_concurrent_batches_share_one_commit() -> None:
    sink = SlowSink()
    committer = GroupCommitter(sink, ServerMetrics())
    committer.start()
    try:
        first = asyncio.create_task(committer.submit(batch(1)))
        await asyncio.sleep(0)  # the writer takes the first batch and waits on the sink
        rest = [asyncio.create_task(committer.submit(batch(2))) for _ in range(10)]
        await asyncio.sleep(0)
        sink.release.set()
        outcomes = await asyncio.gather(first, *rest)
    finally:
        await committer.stop()
    assert sink.groups == [1, 10]
    assert [o.accepted for o in outcomes] == [1] + [2] * 10
    assert committer.pending_readings == 0


async def test_a_failed_commit_fails_every_waiting_request() -> None:
    sink = SlowSink(fail=True)
    committer = GroupCommitter(sink, ServerMetrics())
    committer.start()
    try:
        tasks = [asyncio.create_task(committer.submit(batch(1))) for _ in range(3)]
        await asyncio.sleep(0)
        sink.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await committer.stop()
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert committer.pending_readings == 0


async def test_too_many_pending_readings_is_overloaded() -> None:
    sink = SlowSink()
    committer = GroupCommitter(sink, ServerMetrics(), max_pending=1000)
    committer.start()
    try:
        waiting = asyncio.create_task(committer.submit(batch(900)))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await committer.submit(batch(200))
        sink.release.set()
        assert (await waiting).accepted == 900
    finally:
        await committer.stop()


class FlakyNodeStore:
    def __init__(self) -> None:
        self.down = True
        self.written: list[Heartbeat] = []

    async def get_node(self, node_id: str) -> NodeRow | None:
        return NodeRow(node_id, "pi-log", 0)

    async def write_heartbeats(self, beats: list[Heartbeat]) -> None:
        if self.down:
            raise StoreUnavailable()
        self.written += beats


class KnownNodes:
    def __init__(self) -> None:
        self.last_seen: dict[str, Heartbeat] = {}

    async def exists(self, node_id: str) -> bool:
        return True

    async def note_software_version(self, node_id: str, version: str, actor: str) -> bool:
        return False


def telemetry(second: int) -> Telemetry:
    return Telemetry(
        node_id="n1",
        role="pi-log",
        timestamp=T0.replace(second=second),
        uptime_seconds=second,
        software_version="1",
        ip_address="10.0.0.1",  # type: ignore[arg-type]
    )


async def test_heartbeats_wait_out_an_outage_in_a_bounded_buffer() -> None:
    store = FlakyNodeStore()
    clock = FakeClock(T0)
    # no instance_id in these heartbeats: leases and the activity log are never asked
    service = HeartbeatService(
        store,  # type: ignore[arg-type]
        KnownNodes(),  # type: ignore[arg-type]
        clock,
        ServerMetrics(),
        leases=None,  # type: ignore[arg-type]
        activity=None,  # type: ignore[arg-type]
        buffer_max=100,
    )
    node = Principal(1, "node", "n1", frozenset({"node"}), "n1")  # type: ignore[arg-type]
    for second in range(50):
        await service.accept(node, telemetry(second))
    assert await service.flush() == 0
    assert service.buffered == 50
    for second in range(50, 59):
        await service.accept(node, telemetry(second))
    for _ in range(60):
        await service.accept(node, telemetry(59))
    assert service.buffered == 100
    assert service.dropped == 19
    store.down = False
    assert await service.flush() == 100
    assert service.buffered == 0
    assert [b.uptime_seconds for b in store.written[:3]] == [19, 20, 21]  # the oldest were dropped
