"""Room: server (demo simulators; imports only ``beamwarden.protocol``). Simulated sensor nodes.

A :class:`SimulatedNode` behaves like a small agent and speaks only the wire protocol of
PROTOCOL.md over HTTP, so the real agent can later take its place: it registers, heartbeats every
``heartbeat_s`` seconds, samples its sensors into a queue of readings with ``"<stream>:<seq>"``
ids (a new stream per start) and pushes them in small batches. On an answer other than 2xx it does
what the sender table says:

* 400: set aside exactly the items the error names (logged, counted), resend the rest at once;
* 413: halve the batch and resend;
* 429, 503: wait ``Retry-After``; 5xx, network errors, timeouts: exponential backoff with jitter;
* 401, 403, 404 and any other 4xx: keep everything queued, report it, retry slowly.

A problem is logged once when it starts and once when it is over, not on every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import httpx

from beamwarden.protocol import CURRENT, InstanceState, Registration, Telemetry

Payload = dict[str, float | int | str]

#: the kinds of simulated node ``make_node`` builds, in the order the demo adds them
KINDS = ("geiger", "climate", "system", "flaky")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- sensors ---------------------------------------------------------------------------------


class Sensor(Protocol):
    """Something a node samples every ``period_s`` seconds into one reading's payload."""

    sensor_type: str
    sensor_id: str
    period_s: float

    def sample(self) -> Payload:
        """The payload of one reading (empty: nothing to report this time)."""
        ...


def poisson(rng: random.Random, mean: float) -> int:
    """One Poisson-distributed count (Knuth's method, fine for the small means of a Geiger tube)."""
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class GeigerCounter:
    """A Geiger counter on background radiation: Poisson counts at 0.3–0.5 counts per second.

    ``cpm`` is the count of the last 60 s (the window starts full, as if the counter had been on
    for a minute already), ``cps`` that rate per second, ``counts`` the counts of this sample's
    period, and the dose rate ``cpm / 151`` µSv/h, the conversion factor of an SBM-20 tube.
    """

    sensor_type = "geiger"

    def __init__(
        self,
        rng: random.Random,
        sensor_id: str = "geiger-0",
        period_s: float = 1.0,
        tube_type: str = "SBM-20",
        cpm_per_usv_h: float = 151.0,
    ):
        self.sensor_id = sensor_id
        self.period_s = period_s
        self._rng = rng
        self._tube_type = tube_type
        self._cpm_per_usv_h = cpm_per_usv_h
        self._rate = rng.uniform(0.3, 0.5)
        size = max(1, round(60 / period_s))
        self._window = deque((poisson(rng, self._rate * period_s) for _ in range(size)), size)

    def sample(self) -> Payload:
        self._rate = min(0.5, max(0.3, self._rate + self._rng.gauss(0, 0.005)))
        counts = poisson(self._rng, self._rate * self.period_s)
        self._window.append(counts)
        cpm = sum(self._window) * 60 / (len(self._window) * self.period_s)
        return {
            "counts": counts,
            "cps": round(cpm / 60, 3),
            "cpm": round(cpm, 1),
            "usv_per_hour": round(cpm / self._cpm_per_usv_h, 4),
            "tube_type": self._tube_type,
        }


class ClimateSensor:
    """A climate sensor: temperature and humidity wandering around a room's values, the air
    pressure around 101 325 Pa, and a battery that slowly runs down."""

    sensor_type = "climate"

    def __init__(
        self,
        rng: random.Random,
        sensor_id: str = "bme280@0x76",
        period_s: float = 2.0,
        temperature_c: float = 21.0,
        humidity_pct: float = 45.0,
        battery_pct: float = 100.0,
    ):
        self.sensor_id = sensor_id
        self.period_s = period_s
        self._rng = rng
        self._mean = (temperature_c, humidity_pct, 101_325.0)
        self._temperature = temperature_c + rng.gauss(0, 0.5)
        self._humidity = humidity_pct + rng.gauss(0, 2)
        self._pressure = 101_325.0 + rng.gauss(0, 100)
        self._battery = battery_pct

    def sample(self) -> Payload:
        rng = self._rng
        mean_t, mean_h, mean_p = self._mean
        # random walks pulled back towards the mean, so they wander but never drift away
        self._temperature += rng.gauss(0, 0.05) + 0.02 * (mean_t - self._temperature)
        self._humidity += rng.gauss(0, 0.2) + 0.02 * (mean_h - self._humidity)
        self._humidity = min(100.0, max(0.0, self._humidity))
        self._pressure += rng.gauss(0, 4) + 0.02 * (mean_p - self._pressure)
        self._battery = max(0.0, self._battery - 0.002)
        return {
            "temperature_c": round(self._temperature, 2),
            "humidity_pct": round(self._humidity, 1),
            "pressure_pa": round(self._pressure, 1),
            "battery_pct": round(self._battery, 2),
        }


class SystemSensor:
    """This machine's own figures, read from ``/proc``, ``/sys`` and ``statvfs`` (a field that
    cannot be read here is left out)."""

    sensor_type = "system"

    def __init__(self, sensor_id: str = "system", period_s: float = 5.0, disk: str = "/"):
        self.sensor_id = sensor_id
        self.period_s = period_s
        self._disk = disk
        self._cpu = _cpu_times()

    def sample(self) -> Payload:
        out: Payload = {}
        cpu = _cpu_times()
        if cpu is not None and self._cpu is not None:
            busy, total = cpu[0] - self._cpu[0], cpu[1] - self._cpu[1]
            if total > 0:
                out["cpu_percent"] = round(100 * busy / total, 1)
        self._cpu = cpu
        with contextlib.suppress(OSError, ValueError, KeyError, ZeroDivisionError):
            info = {
                key: int(value.split()[0])
                for key, _, value in (line.partition(":") for line in _read("/proc/meminfo"))
            }
            out["mem_percent"] = round(100 * (1 - info["MemAvailable"] / info["MemTotal"]), 1)
        with contextlib.suppress(OSError, ZeroDivisionError):
            st = os.statvfs(self._disk)
            used = st.f_blocks - st.f_bfree
            out["disk_percent"] = round(100 * used / (used + st.f_bavail), 1)
        with contextlib.suppress(OSError, ValueError, IndexError):
            out["temperature_c"] = int(_read("/sys/class/thermal/thermal_zone0/temp")[0]) / 1000
        with contextlib.suppress(OSError):
            out["load1"] = round(os.getloadavg()[0], 2)
        with contextlib.suppress(OSError, ValueError, IndexError):
            out["uptime_s"] = round(float(_read("/proc/uptime")[0].split()[0]), 1)
        return out


def _read(path: str) -> list[str]:
    with open(path, encoding="ascii") as f:
        return f.read().splitlines()


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from ``/proc/stat``."""
    try:
        values = [int(v) for v in _read("/proc/stat")[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = sum(values[3:5])  # idle + iowait
    return sum(values) - idle, sum(values)


# --- nodes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who a simulated node is, and the node token it sends."""

    node_id: str
    token: str
    role: str = "pi-log"
    software_version: str = "0.1.0"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outages:
    """A flaky link: silent (no heartbeat, no push) for the last ``silent_s`` of every ``every_s``.

    Readings are still sampled while silent; they wait in the queue and go out afterwards.
    """

    every_s: float = 60.0
    silent_s: float = 15.0

    def silent(self, elapsed_s: float) -> bool:
        return elapsed_s % self.every_s >= self.every_s - self.silent_s


class SimulatedNode:
    """One node: register, then heartbeat, sample and push until told to stop."""

    def __init__(
        self,
        identity: NodeIdentity,
        sensors: list[Sensor],
        client: httpx.AsyncClient,
        *,
        rng: random.Random | None = None,
        heartbeat_s: float = 2.0,
        push_every_s: float = 2.0,
        batch_max: int = 50,
        queue_max: int = 10_000,
        outages: Outages | None = None,
        slow_retry_s: float = 30.0,
        backoff_max_s: float = 30.0,
        now: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.identity = identity
        self._sensors = sensors
        self._client = client
        self._rng = rng or random.Random()
        self._heartbeat_s = heartbeat_s
        self._push_every_s = push_every_s
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._outages = outages
        self._slow_retry_s = slow_retry_s
        self._backoff_max_s = backoff_max_s
        self._now = now
        self._monotonic = monotonic
        self._started = monotonic()
        self._headers = {"Authorization": f"Bearer {identity.token}"}
        self._log = logging.getLogger(f"beamwarden.demo.{identity.node_id}")
        #: a new stream per start: reading ids are "<stream>:<seq>" and never reused
        self._stream = secrets.token_hex(6)
        self._seq = itertools.count(1)
        self._instance_id = secrets.token_hex(8)
        self._queue: deque[dict[str, Any]] = deque()
        self._registered = False
        self._was_silent = False
        self._failures: dict[str, int] = {}  # per request kind: consecutive transient failures
        self._not_before: dict[str, float] = {}  # per request kind: monotonic time of the next try
        self._problems: dict[str, str] = {}  # per request kind: the problem last reported
        self.sent = 0
        """Readings the server acknowledged (stored or duplicate)."""
        self.dead_letters: deque[tuple[dict[str, Any], str]] = deque(maxlen=1000)
        """Readings the server refused as invalid, with the reason (the newest 1000)."""
        self.refused = 0
        self.dropped = 0
        """Readings dropped because the queue was full."""

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then try once more to push what is queued."""
        self._started = self._monotonic()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._every(self._heartbeat_s, stop, self.heartbeat))
            tasks.create_task(self._every(self._push_every_s, stop, self.push))
            for sensor in self._sensors:
                tasks.create_task(self._every(sensor.period_s, stop, partial(self.sample, sensor)))
        self._not_before.clear()
        await self.push()

    async def _every(
        self, period_s: float, stop: asyncio.Event, action: Callable[[], Awaitable[None]]
    ) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stop.is_set():
            await action()
            due = max(due + period_s, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), due - loop.time())

    def _silent(self) -> bool:
        if self._outages is None:
            return False
        silent = self._outages.silent(self._monotonic() - self._started)
        if silent != self._was_silent:
            self._was_silent = silent
            if silent:
                self._log.info("%s goes silent (a simulated outage)", self.identity.node_id)
            else:
                self._log.info("%s is back after its outage", self.identity.node_id)
        return silent

    async def sample(self, sensor: Sensor) -> None:
        """Queue one reading of ``sensor`` (the oldest is dropped, and counted, when full)."""
        payload = sensor.sample()
        if not payload:
            return
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.dropped += 1
            self._report("queue", f"queue full ({self._queue_max}); dropping the oldest")
        self._queue.append(
            {
                "node_id": self.identity.node_id,
                "sensor_type": sensor.sensor_type,
                "sensor_id": sensor.sensor_id,
                "payload": payload,
                "timestamp": iso(self._now()),
                "reading_id": f"{self._stream}:{next(self._seq)}",
            }
        )

    # --- requests ----------------------------------------------------------------------------

    def _ready(self, kind: str) -> bool:
        """Whether a request of this kind may be sent now (not silent, not waiting to retry)."""
        return not self._silent() and self._monotonic() >= self._not_before.get(kind, 0.0)

    async def _post(self, kind: str, path: str, body: Any) -> httpx.Response | None:
        """POST ``body``; a failure is reported and scheduled for a retry (then ``None``)."""
        try:
            response = await self._client.post(path, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            self._retry_later(kind, None, f"cannot reach the server: {exc!r}")
            return None
        if response.is_success:
            self._failures.pop(kind, None)
            self._not_before.pop(kind, None)
            if kind in self._problems:
                del self._problems[kind]
                self._log.info("%s: %s works again", self.identity.node_id, kind)
        return response

    def _retry_later(self, kind: str, response: httpx.Response | None, problem: str) -> None:
        """Schedule the next try of ``kind`` by PROTOCOL.md's sender table."""
        status = None if response is None else response.status_code
        if response is not None and status in (429, 503):
            delay = _retry_after(response)
        elif status is None or status >= 500:
            failures = self._failures[kind] = self._failures.get(kind, 0) + 1
            backoff = min(self._backoff_max_s, 0.5 * 2 ** min(failures, 16))
            delay = backoff * self._rng.uniform(0.5, 1.0)
        else:  # 401, 403, 404, 405, 409, other 4xx: a configuration problem; keep, retry slowly
            delay = self._slow_retry_s
        self._not_before[kind] = self._monotonic() + delay
        self._report(kind, problem, error=status is not None and status < 500)

    def _report(self, kind: str, problem: str, error: bool = False) -> None:
        if self._problems.get(kind) != problem:
            self._problems[kind] = problem
            level = logging.ERROR if error else logging.WARNING
            self._log.log(level, "%s: %s: %s", self.identity.node_id, kind, problem)

    async def register(self) -> bool:
        """Register once (retried by the heartbeat until it works); whether it is done."""
        if self._registered:
            return True
        if not self._ready("registration"):
            return False
        body = Registration.model_validate(
            {
                "node_id": self.identity.node_id,
                "role": self.identity.role,
                "hostname": self.identity.node_id,
                "ip_address": "127.0.0.1",
                "software_version": self.identity.software_version,
                "tags": self.identity.tags,
            }
        ).model_dump(mode="json")
        response = await self._post("registration", "/api/nodes/register", body)
        if response is not None and not response.is_success:
            self._retry_later("registration", response, _problem(response))
            return False
        self._registered = response is not None
        return self._registered

    async def heartbeat(self) -> None:
        """Send one heartbeat (after registering)."""
        if not await self.register() or not self._ready("telemetry"):
            return
        body = Telemetry.model_validate(
            {
                "node_id": self.identity.node_id,
                "role": self.identity.role,
                "timestamp": self._now(),
                "uptime_seconds": max(0.0, self._monotonic() - self._started),
                "software_version": self.identity.software_version,
                "ip_address": "127.0.0.1",
                "protocol_version": CURRENT,
                "interval_seconds": float(self._heartbeat_s),
                "instance_id": self._instance_id,
                "state": InstanceState.ACTIVE,
                "metrics": {
                    "queue_depth": float(len(self._queue)),
                    "readings_sent": float(self.sent),
                    "dead_letters": float(self.refused),
                },
                "tags": self.identity.tags,
            }
        ).model_dump(mode="json", exclude_none=True)
        response = await self._post("telemetry", "/api/telemetry", body)
        if response is not None and not response.is_success:
            # heartbeats are facts about now: a failed one is not resent; the next one waits
            self._retry_later("telemetry", response, _problem(response))

    async def push(self) -> None:
        """Send the queue, a small batch at a time, until it is empty or a send fails."""
        while self._queue and self._registered and self._ready("readings"):
            batch = list(itertools.islice(self._queue, self._batch_max))
            response = await self._post("readings", "/api/readings", batch)
            if response is None:
                return
            if response.is_success:
                for _ in batch:
                    self._queue.popleft()
                self.sent += len(batch)
            elif response.status_code == 400:
                self._set_aside(batch, response)
            elif response.status_code == 413 and len(batch) > 1:
                self._batch_max = max(1, len(batch) // 2)
            else:
                self._retry_later("readings", response, _problem(response))
                return

    def _set_aside(self, batch: list[dict[str, Any]], response: httpx.Response) -> None:
        """400: the items the error names go to the dead letters; the rest are resent at once."""
        error = _error(response)
        named: dict[int, str] = {}
        for detail in error.get("details") or []:
            index = detail.get("index") if isinstance(detail, dict) else None
            if isinstance(index, int) and 0 <= index < len(batch):
                named[index] = f"{detail.get('field', '')}: {detail.get('message', '')}"
        if not named:  # the body as a whole was refused: nothing in it can be sent as it is
            named = dict.fromkeys(range(len(batch)), str(error.get("message", "")))
        for _ in batch:
            self._queue.popleft()
        self._queue.extendleft(reversed([r for i, r in enumerate(batch) if i not in named]))
        for index, reason in named.items():
            self.dead_letters.append((batch[index], reason))
        self.refused += len(named)
        self._log.error(
            "%s: the server refused %d readings as invalid; set aside: %s",
            self.identity.node_id,
            len(named),
            error.get("message", ""),
        )


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _problem(response: httpx.Response) -> str:
    error = _error(response)
    return f"HTTP {response.status_code} {error.get('code', '')}: {error.get('message', '')}"


def _retry_after(response: httpx.Response, default: float = 5.0) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", default)))
    except ValueError:
        return default


def make_node(
    kind: str, identity: NodeIdentity, client: httpx.AsyncClient, rng: random.Random | None = None
) -> SimulatedNode:
    """A simulated node of one of :data:`KINDS`."""
    rng = rng or random.Random()
    sensors: list[Sensor]
    outages = None
    if kind == "geiger":
        sensors = [GeigerCounter(rng)]
    elif kind == "climate":
        sensors = [ClimateSensor(rng)]
    elif kind == "system":
        sensors = [SystemSensor()]
    elif kind == "flaky":
        sensors = [ClimateSensor(rng, "sht31@0x44", temperature_c=12.0, humidity_pct=70.0)]
        outages = Outages()
    else:
        raise ValueError(f"unknown kind of simulated node {kind!r}; one of {', '.join(KINDS)}")
    return SimulatedNode(identity, sensors, client, rng=rng, outages=outages)
