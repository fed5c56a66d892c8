"""Room: agent. The agent process: wires config, queue, scheduler, pusher and node together.

Start-up never waits for the network: drivers start at once and their readings are queued while
the node enrols, registers and finds the server. Shutdown (``stop`` set, e.g. by SIGTERM) reports
``stopping``, stops the drivers, lets the commit in flight finish, pushes what is queued for a few
seconds, reports ``stopped`` and closes the queue. A ``kill -9`` skips all that and loses nothing
committed: the next start replays the queue.

One agent per state directory: a lock file (``flock``, released by the kernel when the process
dies, however it dies) refuses a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from beamwarden.agent.clock import Clock, SystemClock
from beamwarden.agent.config import AgentConfig
from beamwarden.agent.errors import StateDirBusy
from beamwarden.agent.node import Metrics, NodeLink
from beamwarden.agent.observe import LocalEndpoint, MetricsBridge, SensorFacts, agent_observability
from beamwarden.agent.push import Pusher, ReadingSender
from beamwarden.agent.push.answers import Action
from beamwarden.agent.push.pacing import Jitter, equal_jitter
from beamwarden.agent.queue import QueueWriter, ReadingQueue
from beamwarden.agent.scheduler import Scheduler
from beamwarden.obs import Observability
from beamwarden.protocol import InstanceState

log = logging.getLogger("beamwarden.agent")

QUEUE_FILE = "queue.sqlite3"
LOCK_FILE = "pi-log.lock"
#: how long shutdown keeps pushing what is queued
DRAIN_ON_STOP_S = 5.0
_NOT_METRIC = re.compile(r"[^a-z0-9_]+")


@contextlib.contextmanager
def state_dir_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirBusy(
                f"another pi-log process runs on {state_dir} (lock {state_dir / LOCK_FILE})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def metric_name(text: str) -> str:
    return _NOT_METRIC.sub("_", text.lower()).strip("_")[:40] or "x"


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        jitter: Jitter = equal_jitter,
        obs: Observability | None = None,
    ) -> None:
        self.config = config
        #: the agent's logs and metrics (the CLI installs it on the root logger and starts it)
        self.obs = obs or agent_observability()
        self.endpoint: LocalEndpoint | None = None
        self.clock = clock or SystemClock()
        self.transport = transport
        self.jitter = jitter
        self.process = psutil.Process()
        self.queue: ReadingQueue | None = None
        self.pusher: Pusher | None = None
        self.scheduler: Scheduler | None = None
        self.node: NodeLink | None = None
        self.writer: QueueWriter | None = None

    def metrics(self) -> Metrics:
        """What the heartbeat carries about the agent, its queue, its drivers and the machine."""
        queue, pusher, scheduler, writer = self.queue, self.pusher, self.scheduler, self.writer
        assert queue is not None
        assert pusher is not None
        assert scheduler is not None
        assert writer is not None
        oldest = queue.oldest_enqueued_at()
        dropped, dead = queue.counters()
        now = self.clock.now().timestamp()
        health = scheduler.health
        out: Metrics = {
            "queue_depth": queue.depth,
            "queue_bytes": queue.size_bytes,
            "queue_oldest_age_s": round(max(0.0, now - oldest), 1) if oldest else 0.0,
            "queue_dropped_total": dropped,
            "dead_letters": dead,
            "push_errors_total": pusher.errors_total,
            "push_stored_total": pusher.stored_total,
            "push_ok": pusher.problem is None,
            "readings_lost_total": sum(h.lost_total for h in health.values())
            + writer.refused_total,
            "drivers_total": len(health),
            "drivers_failing": sum(1 for h in health.values() if h.ok is False),
            "agent_rss_bytes": self.process.memory_info().rss,
            "agent_cpu_percent": self.process.cpu_percent(None),
            "cpu_percent": psutil.cpu_percent(None),
            "mem_percent": psutil.virtual_memory().percent,
            "disk_percent": psutil.disk_usage(str(self.config.state_dir)).percent,
        }
        for sensor_id, h in list(health.items())[:150]:
            out[f"driver_{metric_name(sensor_id)}_ok"] = h.ok is not False
        return out

    def sensor_facts(self) -> dict[str, SensorFacts]:
        scheduler = self.scheduler
        if scheduler is None:
            return {}
        out: dict[str, SensorFacts] = {}
        for sensor_id, h in scheduler.health.items():
            driver = scheduler.drivers.get(sensor_id)
            out[sensor_id] = SensorFacts(
                ok=h.ok,
                readings_total=h.readings_total,
                failures_total=h.failures_total,
                malformed_total=driver.malformed if driver is not None else 0,
                lost_total=h.lost_total,
                missed_ticks_total=h.missed_ticks,
                last_error=h.last_error,
            )
        return out

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``/health``: whether this agent delivers (False: 503), and what the state is."""
        node, pusher, queue, writer = self.node, self.pusher, self.queue, self.writer
        if node is None or pusher is None or queue is None or writer is None:
            return False, {"status": "starting"}
        sensors = self.sensor_facts()
        problem = pusher.problem
        refused = problem is not None and problem.action in (Action.REFUSED, Action.CONFLICT)
        store_failing = self.scheduler is not None and any(
            h.store_failing for h in self.scheduler.health.values()
        )
        failing = refused or node.conflict is not None or store_failing
        degraded = problem is not None or any(f.ok is False for f in sensors.values())
        oldest = queue.oldest_enqueued_at()
        body: dict[str, Any] = {
            "status": "failing" if failing else "degraded" if degraded else "ok",
            "node_id": self.config.node_id,
            "instance_id": node.instance_id,
            "state": node.state.value,
            "held_by_another_instance": node.conflict,
            "push": {
                "ok": problem is None,
                "problem": None if problem is None else problem.message,
                "stored_total": pusher.stored_total,
                "errors_total": pusher.errors_total,
            },
            "queue": {
                "depth": queue.depth,
                "oldest_age_s": round(max(0.0, self.clock.now().timestamp() - oldest), 1)
                if oldest
                else 0.0,
                "writable": not store_failing,
            },
            "sensors": {
                sensor_id: {
                    "ok": f.ok,
                    "readings_total": f.readings_total,
                    "malformed_total": f.malformed_total,
                    "last_error": f.last_error,
                }
                for sensor_id, f in sensors.items()
            },
        }
        return not failing, body

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        with state_dir_lock(config.state_dir):
            self.queue = ReadingQueue(
                config.state_dir / QUEUE_FILE, config.queue.max_rows, config.queue.max_bytes
            )
            try:
                await self._run(self.queue, stop)
            finally:
                self.queue.close()

    async def _run(self, queue: ReadingQueue, stop: asyncio.Event) -> None:
        config, clock = self.config, self.clock
        stats = queue.stats()
        log.info(
            "pi-log starting: node %s, %d sensors, queue %s (stream %s, %d readings waiting)",
            config.node_id,
            len(config.sensors),
            queue.path,
            queue.stream,
            stats.rows,
        )
        self.writer = writer = QueueWriter(queue, clock, config.commit_log)
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=2)
        async with httpx.AsyncClient(
            base_url=config.api_url,
            timeout=config.push.timeout_s,
            transport=self.transport,
            limits=limits,
        ) as client:
            self.node = node = NodeLink(config, client, clock, self.metrics, self.jitter)
            client.headers["User-Agent"] = f"pi-log/{node.version}"
            sender = ReadingSender(client, lambda: node.token, clock, config.push.gzip_min_bytes)
            self.pusher = pusher = Pusher(queue, sender, clock, config.push, self.jitter)

            def hold(holder: str | None) -> None:
                pusher.hold = holder
                if holder is None:
                    pusher.wake.set()

            node.on_conflict = hold
            node.ready = lambda: pusher.stored_total > 0 or queue.depth == 0
            pusher.on_stored = node.poke
            self.scheduler = scheduler = Scheduler(
                config.sensors, config.node_id, writer, clock, on_queued=pusher.notify
            )
            if config.http_listen is not None:
                bridge = MetricsBridge(self.obs.registry, self.metrics, self.sensor_facts)
                self.endpoint = LocalEndpoint(self.obs, bridge, self.health)
                await self.endpoint.start(*config.http_listen)
            drivers_stop, network_stop = asyncio.Event(), asyncio.Event()
            drivers = asyncio.create_task(scheduler.run(drivers_stop), name="scheduler")
            talk = asyncio.create_task(node.run(network_stop), name="node")
            push = asyncio.create_task(self._push(node, pusher, network_stop), name="pusher")
            await stop.wait()
            log.info(
                "stopping: drivers, then up to %g s of pushing what is queued", DRAIN_ON_STOP_S
            )
            if node.reported is not None and node.conflict is None:
                node.set_state(InstanceState.STOPPING)
                with contextlib.suppress(Exception):
                    await node.heartbeat()
            drivers_stop.set()
            await asyncio.gather(drivers, return_exceptions=True)
            await writer.close()
            network_stop.set()
            pusher.wake.set()
            await asyncio.gather(talk, push, return_exceptions=True)
            if node.token is not None:
                await pusher.drain(DRAIN_ON_STOP_S)
            await node.farewell()
            if self.endpoint is not None:
                await self.endpoint.close()
            log.info("stopped; %d readings left in the queue for the next start", queue.depth)

    async def _push(self, node: NodeLink, pusher: Pusher, stop: asyncio.Event) -> None:
        waiter = asyncio.ensure_future(node.have_token.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
        if node.token is not None:
            await pusher.run(stop)
