"""Room: server/services. Telemetry: heartbeats acknowledged at once and written in batches.

PROTOCOL.md allows it: heartbeats are facts about *now*, and losing the last second of them in a
server crash is acceptable. While the database is down they wait in a bounded buffer; what the
bound drops is counted (metric) and logged once per outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from beamwarden.fleet import ClockOffset
from beamwarden.protocol import Scope, Telemetry, check_protocol_version
from beamwarden.server.errors import Forbidden, NotFound, StoreUnavailable
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.records import Heartbeat, Principal, to_us
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.ports import NodeStore
from beamwarden.server.services.registry import NodeRegistry

log = logging.getLogger("beamwarden.heartbeats")


class HeartbeatService:
    def __init__(
        self,
        store: NodeStore,
        registry: NodeRegistry,
        clock: Clock,
        metrics: ServerMetrics,
        buffer_max: int = 100_000,
    ):
        self._store = store
        self._registry = registry
        self._clock = clock
        self._metrics = metrics
        self._buffer: deque[Heartbeat] = deque()
        self._buffer_max = buffer_max
        self._offsets: dict[str, ClockOffset] = {}
        self._failing = False
        self.dropped = 0
        """Heartbeats dropped since start because the buffer was full."""

    async def accept(self, principal: Principal, msg: Telemetry) -> str | None:
        """Validate and buffer one heartbeat; return a ``Warning`` header value, if any."""
        verdict = check_protocol_version(msg.protocol_version)
        if principal.kind != "node":
            raise Forbidden("telemetry is sent with a node token")
        if msg.node_id != principal.node_id and Scope.RELAY not in principal.scopes:
            raise Forbidden(
                f"this token belongs to node {principal.node_id!r}, not {msg.node_id!r}"
            )
        if not await self._registry.exists(msg.node_id):
            raise NotFound(f"node {msg.node_id!r} is not in the inventory", code="unknown_node")
        received = self._clock.now()
        offset = self._offsets.get(msg.node_id)
        if offset is None:
            row = await self._store.get_node(msg.node_id)
            if row is not None and row.clock_offset_seconds is not None:
                offset = ClockOffset(row.clock_offset_seconds, row.clock_samples)
        offset = (
            ClockOffset.first(msg.timestamp, received)
            if offset is None
            else offset.update(msg.timestamp, received)
        )
        self._offsets[msg.node_id] = offset
        received_us = to_us(received)
        beat = Heartbeat(
            node_id=msg.node_id,
            ts_us=to_us(msg.timestamp),
            received_us=received_us,
            role=msg.role,
            uptime_seconds=msg.uptime_seconds,
            software_version=msg.software_version,
            ip_address=str(msg.ip_address),
            interval_seconds=msg.interval_seconds,
            protocol_version=verdict.version,
            instance_id=msg.instance_id,
            state=msg.state,
            metrics=dict(msg.metrics),
            tags=dict(msg.tags),
            clock_offset_seconds=offset.seconds,
            clock_samples=offset.samples,
        )
        if len(self._buffer) >= self._buffer_max:
            self._drop_oldest(self._buffer)
        self._buffer.append(beat)
        self._registry.last_seen[msg.node_id] = beat
        self._metrics.heartbeats.inc()
        self._metrics.heartbeat_buffer.set(len(self._buffer))
        return verdict.warning

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _drop_oldest(self, buffer: deque[Heartbeat]) -> None:
        buffer.popleft()
        if self.dropped % 10_000 == 0:
            log.warning(
                "heartbeat buffer full (%d): dropping the oldest; %d dropped so far",
                self._buffer_max,
                self.dropped + 1,
            )
        self.dropped += 1
        self._metrics.heartbeats_dropped.inc()

    async def flush(self) -> int:
        """Write what is buffered; on failure keep it for the next try. Returns how many."""
        if not self._buffer:
            return 0
        beats, self._buffer = self._buffer, deque()
        try:
            await self._store.write_heartbeats(list(beats))
        except StoreUnavailable:
            self._metrics.db_errors.labels("write_heartbeats").inc()
            beats.extend(self._buffer)
            while len(beats) > self._buffer_max:
                self._drop_oldest(beats)
            self._buffer = beats
            if not self._failing:
                log.warning("cannot write heartbeats; keeping up to %d in memory", self._buffer_max)
                self._failing = True
            return 0
        finally:
            self._metrics.heartbeat_buffer.set(len(self._buffer))
        if self._failing:
            log.info("writing heartbeats again")
            self._failing = False
        return len(beats)

    async def run(self, every_s: float) -> None:
        """Flush every ``every_s`` seconds until cancelled (then flush once more)."""
        try:
            while True:
                await asyncio.sleep(every_s)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())
