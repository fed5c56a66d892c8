"""``beamwarden demo`` as a person runs it (a subprocess with real pi-log agents), and its parts.

The process tests are ``slow``: they watch real processes on real time (polling, never sleeping a
fixed time to let something happen). The demo never imports the agent; these tests may, to check
that what the demo writes is a config the agent accepts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from beamwarden import __version__
from beamwarden.agent.clock import SystemClock
from beamwarden.agent.config import parse_config
from beamwarden.agent.drivers.base import SensorContext
from beamwarden.server.demo import agents as demo_agents_module
from beamwarden.server.demo.agents import (
    KINDS,
    AgentProcess,
    Cycle,
    agent_config,
    toml_value,
)
from beamwarden.server.demo.runner import DemoNode, DemoPlan, demo_agents, demo_node_ids

BIN = Path(sys.executable).parent / "beamwarden"
NODES = ["demo-climate-01", "demo-flaky-01", "demo-geiger-01", "demo-system-01"]
AGENT_MODULE = "beamwarden.agent.cli"


# --- the parts -----------------------------------------------------------------------------------


def test_demo_node_ids_take_the_kinds_in_turn() -> None:
    assert demo_node_ids(6) == [
        ("demo-geiger-01", "geiger"),
        ("demo-climate-01", "climate"),
        ("demo-system-01", "system"),
        ("demo-flaky-01", "flaky"),
        ("demo-geiger-02", "geiger"),
        ("demo-climate-02", "climate"),
    ]


@pytest.mark.parametrize(
    ("kind", "sensors"),
    [
        ("geiger", [("geiger", "geiger-0", "simulator", 1.0)]),
        ("climate", [("climate", "bme280@0x76", "simulator", 2.0)]),
        ("system", [("system", "system", "system", 5.0)]),
        ("flaky", [("climate", "sht31@0x44", "simulator", 2.0)]),
    ],
)
def test_each_kind_gets_a_config_the_agent_accepts(
    kind: str, sensors: list[tuple[str, str, str, float]], tmp_path: Path
) -> None:
    text = agent_config(
        "demo-x-01", kind, "bwn_token-of-the-node", "http://127.0.0.1:8000", "pi-log", tmp_path
    )
    config = parse_config(tomllib.loads(text))
    assert config.node_id == "demo-x-01"
    assert config.api_url == "http://127.0.0.1:8000"
    assert config.device_token == "bwn_token-of-the-node"
    assert config.role == "pi-log"
    assert config.state_dir == tmp_path
    assert config.heartbeat_interval_s == 2
    assert config.tags == {"demo": kind}
    found = [(s.sensor_type, s.sensor_id, s.driver_name, s.interval_s) for s in config.sensors]
    assert found == sensors
    for spec in config.sensors:  # what `pi-log check` does: every driver can be built
        context = SensorContext(config.node_id, spec.sensor_type, spec.sensor_id, SystemClock())
        spec.driver_class(spec.driver_config, context)


def test_every_kind_has_its_sensors() -> None:
    assert set(KINDS) == set(demo_agents_module.SENSORS)


@pytest.mark.parametrize(
    "value", ["plain", 'with "quotes"', "back\\slash", "new\nline\ttab", "üñî €", "/a b/c'd"]
)
def test_toml_strings_round_trip(value: str) -> None:
    assert tomllib.loads(f"x = {toml_value(value)}")["x"] == value


def test_toml_tables_numbers_and_booleans() -> None:
    values: dict[str, str | int | float | bool | dict[str, str]] = {
        "t": {"demo": "flaky", "b": 'x"y'},
        "n": 2,
        "f": 1.5,
        "on": True,
    }
    text = "\n".join(f"{k} = {toml_value(v)}" for k, v in values.items())
    assert tomllib.loads(text) == values


def test_the_configs_are_private_and_only_the_flaky_node_cycles(tmp_path: Path) -> None:
    plan = DemoPlan(
        [
            DemoNode("demo-geiger-01", "geiger", "bwn_a" * 4),
            DemoNode("demo-flaky-01", "flaky", "bwn_b" * 4),
        ],
        "bwu_read",
        [],
    )
    cycle = Cycle(up_s=3, down_s=4)
    agents = demo_agents(plan, tmp_path / "agents", "http://127.0.0.1:9", cycle)
    assert [a.node_id for a in agents] == ["demo-geiger-01", "demo-flaky-01"]
    assert [a.cycle for a in agents] == [None, cycle]
    for agent, node in zip(agents, plan.nodes, strict=True):
        config = tmp_path / "agents" / node.node_id / "pi-log.toml"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert agent.command[-2:] == ["run", str(config.resolve())]
        assert agent.log_path == config.resolve().parent / "pi-log.log"
        parsed = parse_config(tomllib.loads(config.read_text()))
        assert parsed.device_token == node.token
        assert parsed.state_dir == config.resolve().parent / "state"


def test_the_guard_becomes_pi_log_while_its_parent_lives() -> None:
    guard = demo_agents_module._GUARD
    done = subprocess.run(
        [sys.executable, "-c", guard, str(os.getpid()), "--help"], capture_output=True, timeout=60
    )
    assert done.returncode == 0
    assert b"pi-log" in done.stdout
    orphaned = subprocess.run(
        [sys.executable, "-c", guard, "1", "--help"], capture_output=True, timeout=60
    )
    assert orphaned.returncode == 0
    assert orphaned.stdout == b"", "a child whose demo is gone does not start an agent"


async def test_an_agent_that_exits_on_its_own_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beamwarden.demo")
    script = "import sys; print('sensor[1].driver: no such thing', file=sys.stderr); sys.exit(3)"
    agent = AgentProcess("demo-x-01", [sys.executable, "-c", script], tmp_path / "x.log")
    await asyncio.wait_for(agent.run(asyncio.Event()), 60)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "demo-x-01: pi-log exited on its own with code 3" in errors[0]
    assert "sensor[1].driver: no such thing" in errors[0]
    assert agent.starts == 1, "an agent that fails is not restarted in a loop"


async def test_an_agent_deaf_to_sigterm_is_killed(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(120)"
    )
    log_path = tmp_path / "deaf.log"
    agent = AgentProcess("demo-x-01", [sys.executable, "-c", script], log_path)
    proc = await agent._start()
    for _ in range(600):  # until its SIGTERM handler is in place (a real process)
        if log_path.exists() and "ready" in log_path.read_text():
            break
        await asyncio.sleep(0.1)
    await agent.terminate(timeout_s=0.5)
    assert proc.returncode == -signal.SIGKILL
    assert agent.proc is None


# --- the demo process ----------------------------------------------------------------------------


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


def drain(lines: queue.Queue[str]) -> str:
    out = []
    while not lines.empty():
        out.append(lines.get())
    return "".join(out)


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


def agent_processes(demo: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in demo.children(recursive=True):
        try:
            if AGENT_MODULE in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


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
            "--agents-dir",
            str(tmp_path / "agents"),
            "--flaky-up",
            "5",
            "--flaky-down",
            "14",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.slow
def test_the_demo_runs_real_agents_and_ctrl_c_stops_them_all(
    demo_process: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, port = demo_process
    assert proc.stdout is not None
    assert proc.stderr is not None
    out = lines_of(proc.stdout)
    err = lines_of(proc.stderr)
    deadline = time.monotonic() + 60
    url = wait_for_line(out, r"running at (http://127\.0\.0\.1:\d+)", deadline)[1]
    assert url == f"http://127.0.0.1:{port}"
    wait_for_line(out, rf"agents:\s+one pi-log each; config and log in {tmp_path}/agents", deadline)
    token = wait_for_line(out, r"read token:\s+(\S+)", deadline)[1]
    assert (
        wait_for_line(out, r"curl -H \"Authorization: Bearer (\S+)\" \S+/api/nodes", deadline)[1]
        == token
    )
    wait_for_line(out, r"/api/series\?", deadline)
    demo = psutil.Process(proc.pid)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5)

    seen_online: set[str] = set()
    flaky: list[str] = []  # the flaky node's statuses, each change once

    def nodes() -> dict[str, dict[str, Any]]:
        items = client.get("/api/nodes").json()["items"]
        for n in items:
            if n["status"] == "online":
                seen_online.add(n["node_id"])
            if n["node_id"] == "demo-flaky-01" and (not flaky or flaky[-1] != n["status"]):
                flaky.append(n["status"])
        return {n["node_id"]: n for n in items}

    def readings(node_id: str, sensor_type: str) -> list[dict[str, Any]]:
        params = {"node_id": node_id, "sensor_type": sensor_type}
        items: list[dict[str, Any]] = client.get("/api/readings", params=params).json()["items"]
        return items

    with client:
        eventually(lambda: nodes() and sorted(seen_online) == NODES, 60, "every node online")
        geiger_node = nodes()["demo-geiger-01"]
        assert geiger_node["role"] == "pi-log"
        assert geiger_node["ip_address"] == "127.0.0.1"
        assert geiger_node["interval_seconds"] == 2
        assert geiger_node["software_version"] == __version__
        eventually(lambda: nodes()["demo-geiger-01"]["state"] == "active", 20, "state active")

        geiger = eventually(lambda: readings("demo-geiger-01", "geiger"), 20, "geiger readings")
        assert set(geiger[0]["payload"]) == {"cps", "cpm", "usv_per_hour"}
        assert re.fullmatch(r"[0-9a-f]+:[1-9][0-9]*", geiger[0]["reading_id"])
        assert geiger[0]["timestamp_source"] == "node"
        climate = eventually(lambda: readings("demo-climate-01", "climate"), 20, "climate")
        assert 5 <= climate[0]["payload"]["temperature_c"] <= 35
        system = eventually(lambda: readings("demo-system-01", "system"), 20, "system readings")
        assert {"cpu_percent", "mem_percent", "disk_percent"} <= set(system[0]["payload"])
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
            20,
            "a temperature series",
        )
        assert series[0]["count"] >= 1

        def came_back() -> bool:
            nodes()
            return re.search("online.*degraded.*offline.*online", ",".join(flaky)) is not None

        eventually(came_back, 60, f"demo-flaky-01 online → degraded → offline → online {flaky}")

    flaky_log = (tmp_path / "agents" / "demo-flaky-01" / "pi-log.log").read_text()
    assert flaky_log.count("pi-log starting") >= 2, "the flaky node's agent was restarted"
    agents = agent_processes(demo)
    assert len(agents) >= 3
    children = demo.children(recursive=True)

    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    assert proc.wait(timeout=60) == 0
    assert [a.pid for a in agents if a.is_running()] == [], "every agent stopped before the demo"
    _, left = psutil.wait_procs(children, timeout=10)
    assert left == [], f"no child outlives the demo: {left}"
    assert "Stopping the agents, then the server" in drain(out)
    logs = drain(err)
    assert "Traceback" not in logs
    assert "exited on its own" not in logs
    for node_id in NODES:
        log_text = (tmp_path / "agents" / node_id / "pi-log.log").read_text()
        assert "Traceback" not in log_text
        if node_id != "demo-flaky-01":  # which may have been starting, or down, at the Ctrl-C
            last_run = log_text.rsplit("pi-log starting", 1)[1]
            assert "stopped;" in last_run, f"{node_id} stopped cleanly"


@pytest.mark.slow
def test_a_killed_demo_leaves_no_agent_behind(
    demo_process: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, _ = demo_process
    assert proc.stdout is not None
    out = lines_of(proc.stdout)
    wait_for_line(out, r"Press Ctrl-C to stop", time.monotonic() + 60)
    demo = psutil.Process(proc.pid)
    agents = eventually(
        lambda: len(agent_processes(demo)) >= 3 and agent_processes(demo), 30, "agents"
    )
    proc.kill()  # the demo alone, by SIGKILL: it cannot stop anything itself
    proc.wait(timeout=10)
    _, left = psutil.wait_procs(agents, timeout=30)
    assert left == [], "the kernel told every agent that its demo died"


@pytest.mark.slow
def test_the_dashboard_shows_the_demo_fleet_live(
    demo_process: tuple[subprocess.Popen[bytes], int], browser: Any
) -> None:
    """Log in with the login the demo printed, see its nodes with the right badges, and watch the
    flaky node's badge turn degraded, then offline, without reloading the page."""
    from playwright.sync_api import expect

    from tests.fixtures.browser import watch_console

    proc, _ = demo_process
    assert proc.stdout is not None
    out = lines_of(proc.stdout)
    deadline = time.monotonic() + 60
    login = wait_for_line(out, r"dashboard:\s+(\S+)/\s+\(log in as (\S+) / (\S+)\)", deadline)
    url, user, password = login[1], login[2], login[3]
    page = browser.new_page()
    errors = watch_console(page)
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    for node_id in NODES:
        expect(page.locator(f'article[data-node="{node_id}"]')).to_have_count(1)
    for node_id in ("demo-geiger-01", "demo-climate-01", "demo-system-01"):
        badge = page.locator(f'article[data-node="{node_id}"] .badge')
        expect(badge).to_have_text("online", timeout=30_000)
    page.evaluate("window.__stillHere = true")
    flaky = page.locator('article[data-node="demo-flaky-01"] .badge')
    expect(flaky).to_have_text("degraded", timeout=40_000)
    expect(flaky).to_have_text("offline", timeout=20_000)
    assert page.evaluate("window.__stillHere") is True
    assert errors == []
