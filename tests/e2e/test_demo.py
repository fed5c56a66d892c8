"""``beamwarden demo`` as a person runs it (a subprocess), and its simulated nodes' sender rules.

The simulators' tests drive one node against an ``httpx.MockTransport`` with a fake monotonic
clock (no sleeping); the process test is ``slow``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamwarden.protocol import decode_readings
from beamwarden.server.demo import simulator
from beamwarden.server.demo.runner import demo_node_ids
from beamwarden.server.demo.simulator import (
    ClimateSensor,
    GeigerCounter,
    NodeIdentity,
    Outages,
    SimulatedNode,
    SystemSensor,
    poisson,
)

BIN = Path(sys.executable).parent / "beamwarden"
NODES = ["demo-climate-01", "demo-flaky-01", "demo-geiger-01", "demo-system-01"]


# --- the demo process --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def lines_of(stream: Any) -> queue.Queue[str]:
    """The lines a pipe gives, collected by a thread so that reading never blocks the test."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for raw in iter(stream.readline, b""):
            lines.put(raw.decode(errors="replace"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_line(lines: queue.Queue[str], pattern: str, deadline: float) -> re.Match[str]:
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no line matching {pattern!r} in time; got: {''.join(seen)}")
        seen.append(line)
        if match := re.search(pattern, line):
            return match


def eventually(check: Callable[[], Any], within_s: float, what: str) -> Any:
    """Poll ``check`` (a real process runs on real time) until it returns something truthy."""
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within_s} s (last: {value!r})")
        time.sleep(0.25)


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMWARDEN_")}
    proc = subprocess.Popen(
        [
            str(BIN),
            "demo",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{tmp_path}/demo.db",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.slow
def test_the_demo_shows_a_live_fleet_and_stops_cleanly(
    demo_process: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = demo_process
    assert proc.stdout is not None
    assert proc.stderr is not None
    out = lines_of(proc.stdout)
    err = lines_of(proc.stderr)
    deadline = time.monotonic() + 30
    url = wait_for_line(out, r"running at (http://127\.0\.0\.1:\d+)", deadline)[1]
    assert url == f"http://127.0.0.1:{port}"
    token = wait_for_line(out, r"read token:\s+(\S+)", deadline)[1]
    assert (
        wait_for_line(out, r"curl -H \"Authorization: Bearer (\S+)\" \S+/api/nodes", deadline)[1]
        == token
    )
    wait_for_line(out, r"/api/series\?", deadline)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5)

    def online() -> list[str]:
        nodes = client.get("/api/nodes").json()["items"]
        return sorted(n["node_id"] for n in nodes if n["status"] == "online")

    with client:
        assert eventually(lambda: online() == NODES, 10, "the four demo nodes online")
        nodes = {n["node_id"]: n for n in client.get("/api/nodes").json()["items"]}
        assert nodes["demo-geiger-01"]["hostname"] == "demo-geiger-01"
        assert nodes["demo-geiger-01"]["ip_address"] == "127.0.0.1"
        assert nodes["demo-geiger-01"]["interval_seconds"] == 2

        def state() -> str | None:
            node: dict[str, Any] = client.get("/api/nodes/demo-geiger-01").json()
            return node["state"]  # written with the next heartbeat flush

        assert eventually(state, 10, "the instance state") == "active"

        def readings(node_id: str, sensor_type: str) -> list[dict[str, Any]]:
            params = {"node_id": node_id, "sensor_type": sensor_type}
            items: list[dict[str, Any]] = client.get("/api/readings", params=params).json()["items"]
            return items

        geiger = eventually(lambda: readings("demo-geiger-01", "geiger"), 10, "geiger readings")
        payload = geiger[0]["payload"]
        assert set(payload) == {"counts", "cps", "cpm", "usv_per_hour", "tube_type"}
        assert payload["usv_per_hour"] == pytest.approx(payload["cpm"] / 151, abs=1e-3)
        assert re.fullmatch(r"[0-9a-f]+:[1-9][0-9]*", geiger[0]["reading_id"])
        climate = eventually(lambda: readings("demo-climate-01", "climate"), 10, "climate readings")
        assert 10 < climate[0]["payload"]["temperature_c"] < 32
        series = eventually(
            lambda: client.get(
                "/api/series",
                params={
                    "node_id": "demo-climate-01",
                    "sensor_id": "bme280@0x76",
                    "field": "temperature_c",
                    "bucket": "10s",
                },
            ).json()["items"],
            10,
            "a temperature series",
        )
        assert series[0]["count"] >= 1

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    logs = []
    while not err.empty():
        logs.append(err.get())
    assert "Traceback" not in "".join(logs)


# --- the simulated nodes -----------------------------------------------------------------------


def test_the_simulators_import_nothing_of_the_server() -> None:
    tree = ast.parse(Path(simulator.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    ours = {name for name in imported if name.startswith("beamwarden")}
    assert ours == {"beamwarden.protocol"}


def test_demo_node_ids_take_the_kinds_in_turn() -> None:
    assert demo_node_ids(6) == [
        ("demo-geiger-01", "geiger"),
        ("demo-climate-01", "climate"),
        ("demo-system-01", "system"),
        ("demo-flaky-01", "flaky"),
        ("demo-geiger-02", "geiger"),
        ("demo-climate-02", "climate"),
    ]


def test_poisson_counts_have_the_asked_mean() -> None:
    rng = random.Random(7)
    counts = [poisson(rng, 0.4) for _ in range(20_000)]
    assert sum(counts) / len(counts) == pytest.approx(0.4, rel=0.05)
    assert min(counts) == 0


def test_each_sensor_speaks_the_vocabulary() -> None:
    rng = random.Random(1)
    geiger = GeigerCounter(rng)
    for _ in range(120):
        reading = geiger.sample()
    assert reading["cpm"] == pytest.approx(60 * float(reading["cps"]), abs=0.1)
    assert 0.3 * 60 / 3 < float(reading["cpm"]) < 0.5 * 60 * 3
    climate = ClimateSensor(rng)
    batteries = [float(climate.sample()["battery_pct"]) for _ in range(100)]
    assert batteries == sorted(batteries, reverse=True)
    system = SystemSensor()
    body = [
        {"node_id": "n", "sensor_type": s.sensor_type, "sensor_id": s.sensor_id, "payload": p}
        | {"timestamp": "2026-01-01T00:00:00Z"}
        for s, p in (
            (geiger, geiger.sample()),
            (climate, climate.sample()),
            (system, system.sample()),
        )
    ]
    decoded = decode_readings(json.dumps(body).encode())
    assert [r.sensor_type for r in decoded] == ["geiger", "climate", "system"]
    if Path("/proc/stat").exists():
        assert {"mem_percent", "disk_percent", "load1", "uptime_s"} <= set(decoded[2].payload)


def test_outages_are_the_last_seconds_of_each_minute() -> None:
    outages = Outages(every_s=60, silent_s=15)
    assert [outages.silent(t) for t in (0, 44.9, 45, 59.9, 60, 104.9, 105)] == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
    ]


class Fake:
    """A fake server (an ``httpx.MockTransport``) answering each request from a script."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.answers: dict[str, list[httpx.Response | Exception]] = {}

    def script(self, path: str, *answers: httpx.Response | Exception) -> None:
        self.answers.setdefault(path, []).extend(answers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.url.path, body))
        pending = self.answers.get(request.url.path)
        answer = pending.pop(0) if pending else httpx.Response(200, json={})
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sent(self, path: str) -> list[Any]:
        return [body for p, body in self.requests if p == path]


class Counter:
    """A sensor whose payload counts up, so each reading is recognisable."""

    sensor_type = "climate"
    sensor_id = "t"
    period_s = 1.0

    def __init__(self) -> None:
        self.n = 0

    def sample(self) -> dict[str, float | int | str]:
        self.n += 1
        return {"temperature_c": float(self.n)}


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
def now() -> list[float]:
    return [1000.0]


@pytest.fixture
async def client(fake: Fake) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.MockTransport(fake.handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        yield client


@pytest.fixture
def node(client: httpx.AsyncClient, now: list[float]) -> SimulatedNode:
    return SimulatedNode(
        NodeIdentity("n1", "bwn_t"),
        [],
        client,
        rng=random.Random(3),
        batch_max=3,
        monotonic=lambda: now[0],
    )


async def queue_readings(node: SimulatedNode, n: int) -> Counter:
    sensor = Counter()
    for _ in range(n):
        await node.sample(sensor)
    return sensor


def temperatures(batch: list[dict[str, Any]]) -> list[float]:
    return [r["payload"]["temperature_c"] for r in batch]


def error(status: int, **extra: Any) -> httpx.Response:
    headers = {"Retry-After": str(extra.pop("retry_after"))} if "retry_after" in extra else None
    body = {"error": {"code": "x", "message": "m", "details": [], "request_id": "r", **extra}}
    return httpx.Response(status, json=body, headers=headers)


async def test_register_then_heartbeat_then_push_in_small_batches(
    node: SimulatedNode, fake: Fake
) -> None:
    await queue_readings(node, 7)
    await node.push()
    assert fake.requests == [], "nothing is pushed before the node has registered"
    await node.heartbeat()
    assert [p for p, _ in fake.requests] == ["/api/nodes/register", "/api/telemetry"]
    registration = fake.sent("/api/nodes/register")[0]
    assert registration["ip_address"] == "127.0.0.1"
    beat = fake.sent("/api/telemetry")[0]
    assert beat["interval_seconds"] == 2
    assert beat["state"] == "active"
    assert beat["metrics"]["queue_depth"] == 7
    await node.push()
    batches = fake.sent("/api/readings")
    assert [len(b) for b in batches] == [3, 3, 1]
    ids = [r["reading_id"] for b in batches for r in b]
    stream = ids[0].rsplit(":", 1)[0]
    assert ids == [f"{stream}:{seq}" for seq in range(1, 8)]
    assert node.queued == 0
    assert node.sent == 7


async def test_a_new_start_is_a_new_stream(fake: Fake, client: httpx.AsyncClient) -> None:
    streams = set()
    for _ in range(2):
        node = SimulatedNode(NodeIdentity("n1", "t"), [], client)
        await node.heartbeat()
        await queue_readings(node, 1)
        await node.push()
        streams.add(fake.sent("/api/readings")[-1][0]["reading_id"].split(":")[0])
    assert len(streams) == 2


@pytest.mark.parametrize(
    "failure",
    [error(500), error(502), error(504), httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
    ids=["500", "502", "504", "connect", "timeout"],
)
async def test_transient_failures_keep_the_batch_and_back_off(
    node: SimulatedNode, fake: Fake, now: list[float], failure: httpx.Response | Exception
) -> None:
    await node.heartbeat()
    await queue_readings(node, 2)
    fake.script("/api/readings", failure, failure)
    await node.push()
    assert node.queued == 2
    await node.push()
    assert len(fake.sent("/api/readings")) == 1, "no retry before the backoff is over"
    now[0] += 1.0  # the first backoff is 0.5–1 s (with jitter)
    await node.push()
    assert len(fake.sent("/api/readings")) == 2
    assert node.queued == 2
    now[0] += 2.0  # the second is 1–2 s
    await node.push()
    assert len(fake.sent("/api/readings")) == 3
    assert node.queued == 0
    assert temperatures(fake.sent("/api/readings")[-1]) == [1.0, 2.0]


@pytest.mark.parametrize("status", [429, 503])
async def test_overload_honours_retry_after(
    node: SimulatedNode, fake: Fake, now: list[float], status: int
) -> None:
    await node.heartbeat()
    await queue_readings(node, 1)
    fake.script("/api/readings", error(status, retry_after=7))
    await node.push()
    now[0] += 6.9
    await node.push()
    assert len(fake.sent("/api/readings")) == 1
    now[0] += 0.1
    await node.push()
    assert len(fake.sent("/api/readings")) == 2
    assert node.queued == 0


async def test_400_sets_aside_exactly_the_named_items(node: SimulatedNode, fake: Fake) -> None:
    await node.heartbeat()
    await queue_readings(node, 4)
    details = [{"index": 1, "field": "payload.temperature_c", "message": "bad"}]
    fake.script("/api/readings", error(400, details=details))
    await node.push()
    batches = fake.sent("/api/readings")
    assert [temperatures(b) for b in batches] == [[1.0, 2.0, 3.0], [1.0, 3.0, 4.0]]
    assert node.queued == 0
    assert node.refused == 1
    assert [temperatures([r]) for r, _ in node.dead_letters] == [[2.0]]
    assert "payload.temperature_c" in node.dead_letters[0][1]


async def test_413_splits_the_batch(node: SimulatedNode, fake: Fake) -> None:
    await node.heartbeat()
    await queue_readings(node, 3)
    fake.script("/api/readings", error(413))
    await node.push()
    assert [len(b) for b in fake.sent("/api/readings")] == [3, 1, 1, 1]
    assert node.queued == 0


@pytest.mark.parametrize("status", [401, 403, 404, 405, 409, 422])
async def test_configuration_errors_keep_everything_and_retry_slowly(
    node: SimulatedNode,
    fake: Fake,
    now: list[float],
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="beamwarden.demo")
    await node.heartbeat()
    await queue_readings(node, 2)
    fake.script("/api/readings", error(status), error(status))
    await node.push()
    await node.push()
    now[0] += 29
    await node.push()
    assert len(fake.sent("/api/readings")) == 1
    assert node.queued == 2
    now[0] += 1
    await node.push()
    assert len(fake.sent("/api/readings")) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, "a problem is reported once, not on every try"
    assert str(status) in errors[0].getMessage()
    now[0] += 30
    await node.push()
    assert node.queued == 0
    assert any("works again" in r.getMessage() for r in caplog.records)


async def test_registration_is_retried_until_it_works(
    node: SimulatedNode, fake: Fake, now: list[float]
) -> None:
    fake.script("/api/nodes/register", httpx.ConnectError("refused"))
    await node.heartbeat()
    assert fake.sent("/api/telemetry") == []
    now[0] += 1
    await node.heartbeat()
    assert len(fake.sent("/api/nodes/register")) == 2
    assert len(fake.sent("/api/telemetry")) == 1


async def test_a_flaky_node_is_silent_but_keeps_its_readings(
    fake: Fake, client: httpx.AsyncClient, now: list[float]
) -> None:
    node = SimulatedNode(
        NodeIdentity("n1", "t"), [], client, outages=Outages(60, 15), monotonic=lambda: now[0]
    )
    await node.heartbeat()
    now[0] += 50
    await queue_readings(node, 2)
    await node.heartbeat()
    await node.push()
    assert [p for p, _ in fake.requests] == ["/api/nodes/register", "/api/telemetry"]
    now[0] += 10
    await node.heartbeat()
    await node.push()
    assert len(fake.sent("/api/telemetry")) == 2
    assert temperatures(fake.sent("/api/readings")[0]) == [1.0, 2.0]


async def test_the_queue_is_bounded_and_counts_what_it_drops(client: httpx.AsyncClient) -> None:
    node = SimulatedNode(NodeIdentity("n1", "t"), [], client, queue_max=3)
    await queue_readings(node, 5)
    assert node.queued == 3
    assert node.dropped == 2


async def test_400_naming_no_item_of_the_batch_sets_the_whole_batch_aside(
    node: SimulatedNode, fake: Fake
) -> None:
    await node.heartbeat()
    await queue_readings(node, 2)
    fake.script("/api/readings", error(400, details=[{"index": 7, "field": "", "message": "?"}]))
    await node.push()
    assert len(fake.sent("/api/readings")) == 1, "never resent as it is"
    assert node.queued == 0
    assert node.refused == 2
