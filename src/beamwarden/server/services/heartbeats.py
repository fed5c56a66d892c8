"""Room: server/services. Telemetry: heartbeats acknowledged at once and written in batches.

PROTOCOL.md allows it: heartbeats are facts about *now*, and losing the last second of them in a
server crash is acceptable. While the database is down they wait in a bounded buffer; what the
bound drops is counted (metric) and logged once per outage.

A heartbeat with an ``instance_id`` also speaks for that agent process (issue 4):

* the node's lease ``node:<node_id>`` is held by its first live instance (TTL three intervals);
  a second live instance (a cloned SD card, two agents with one config) is refused with
  :class:`~beamwarden.fleet.errors.LeaseHeld` (409 naming the holder), and nothing is stored;
* its ``state`` must follow :mod:`beamwarden.fleet.instances`: a refused transition raises
  :class:`~beamwarden.fleet.errors.TransitionRefused` (409) and changes nothing; a new
  instance's first report (whatever its state: the agent may have moved on between two
  heartbeats) is logged as ``instance_started``, each accepted change as ``instance_state``,
  repeats not at all;
* ``stopped``, and ``idle`` (a start that failed or ended), release the node's lease; an
  instance in those states holds none, but is still refused while another one holds the node.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime

from beamwarden.fleet import ClockOffset
from beamwarden.fleet.errors import LeaseHeld
from beamwarden.fleet.instances import Transition, transition
from beamwarden.fleet.leases import LeaseRefusal, refusal
from beamwarden.protocol import InstanceState, Scope, Telemetry, check_protocol_version
from beamwarden.server.errors import Forbidden, NotFound, StoreUnavailable
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.records import Heartbeat, Principal, to_us
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.leases import LeaseService, node_lease_name
from beamwarden.server.services.ports import NodeStore
from beamwarden.server.services.registry import NodeRegistry

log = logging.getLogger("beamwarden.heartbeats")

#: the activity log's kinds: a new instance's first report, and each change of its state
INSTANCE_STARTED = "instance_started"
INSTANCE_STATE = "instance_state"
#: states in which an instance holds no lease on its node
_RESTING = (InstanceState.IDLE, InstanceState.STOPPED)


class HeartbeatService:
    def __init__(
        self,
        store: NodeStore,
        registry: NodeRegistry,
        clock: Clock,
        metrics: ServerMetrics,
        leases: LeaseService,
        activity: ActivityLog,
        buffer_max: int = 100_000,
    ):
        self._store = store
        self._registry = registry
        self._clock = clock
        self._metrics = metrics
        self._leases = leases
        self._activity = activity
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
        if msg.instance_id is not None and msg.state is not None:
            await self._instance(msg, msg.instance_id, msg.state, received)
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
        # a dict look-up unless the version changed (then the activity log is asked once)
        await self._registry.note_software_version(
            msg.node_id, msg.software_version, f"node:{msg.node_id}"
        )
        self._registry.last_seen[msg.node_id] = beat
        self._metrics.heartbeats.inc()
        self._metrics.heartbeat_buffer.set(len(self._buffer))
        return verdict.warning

    async def _instance(
        self, msg: Telemetry, instance_id: str, state: InstanceState, received: datetime
    ) -> None:
        """The node's lease and the instance's state machine (see the module docstring)."""
        node_id = msg.node_id
        before = await self._last_state(node_id, instance_id)
        if state in _RESTING:
            # holds nothing, but may not speak for a node another live instance holds
            lease = await self._leases.get(node_lease_name(node_id))
            if lease is not None and not lease.held_by(instance_id, received):
                raise LeaseHeld(refusal(lease, received))
        else:
            held = await self._leases.hold_node(
                node_id,
                instance_id,
                msg.interval_seconds,
                ip=str(msg.ip_address),
                log_grant=before is None,
            )
            if isinstance(held, LeaseRefusal):
                raise LeaseHeld(held)
        step = transition(before, state, received, reason=msg.tags.get("error"))
        if step is None:
            return
        await self._record(node_id, instance_id, step)
        if state in _RESTING and before is not None:
            await self._leases.release_node(node_id, instance_id)

    async def _last_state(self, node_id: str, instance_id: str) -> InstanceState | None:
        """The state this instance last reported (``None``: a new instance)."""
        last = self._registry.last_seen.get(node_id)
        if last is None:
            row = await self._store.get_node(node_id)
            if row is None or row.instance_id != instance_id:
                return None
            return row.state
        return last.state if last.instance_id == instance_id else None

    async def _record(self, node_id: str, instance_id: str, step: Transition) -> None:
        await self._activity.record(
            INSTANCE_STARTED if step.before is None else INSTANCE_STATE,
            f"{node_id}: {step.describe()}",
            node_id=node_id,
            actor=f"node:{node_id}",
            data={
                "instance_id": instance_id,
                "before": None if step.before is None else str(step.before),
                "after": str(step.after),
                "reason": step.reason,
            },
        )

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
