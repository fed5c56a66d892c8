"""The agent against the real server, as processes: it registers and reports its state, enrols
itself with a key, keeps everything through a server outage (original timestamps kept), keeps
everything while its token is refused, and refuses to share its state directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.processes import BIN, ServerProcess, cli, server_env, token_from

pytestmark = pytest.mark.slow

PI_LOG = str(BIN / "pi-log")
#: the outage test's outage: about a minute in CI (the issue's figure), seconds by hand;
#: ``AGENT_OUTAGE_S`` sets it (``bench/bench_agent_outage.py --outage 600`` is the ten minutes)
OUTAGE_S = float(os.environ.get("AGENT_OUTAGE_S", "60" if os.environ.get("CI") == "true" else "5"))


def until(check: Callable[[], Any], what: str, within_s: float = 30.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        time.sleep(0.1)


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.env = server_env(f"sqlite:///{tmp_path}/server.db")
        self.server = ServerProcess(self.env)
        self.server.start()
        self.read = token_from(cli(self.env, "tokens", "add", "--scope", "read", "--name", "t"))
        self.agents: list[subprocess.Popen[bytes]] = []

    def config(
        self, node: str, credential: str, interval_s: float = 1, top: str = "", **push: float
    ) -> Path:
        path = self.tmp / f"{node}.toml"
        push_lines = "\n".join(f"{k} = {v}" for k, v in push.items())
        path.write_text(
            f"""
device_id = "{node}"
api_url = "{self.server.url}"
{credential}
state_dir = "{self.tmp / node}"
heartbeat_interval_s = {interval_s}
{top}
[push]
batch_age_s = 0.1
backoff_base_s = 0.2
backoff_max_s = 1
{push_lines}
[[sensor]]
type = "sim"
driver = "simulator"
numbered = true
interval_ms = 100
"""
        )
        return path

    def agent(self, config: Path) -> subprocess.Popen[bytes]:
        with config.with_suffix(".log").open("ab") as log:
            proc = subprocess.Popen(
                [PI_LOG, "run", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        self.agents.append(proc)
        return proc

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(
            f"{self.server.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.read}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def readings(self, node: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"node_id": node, "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self.get("/api/readings", **params)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    def close(self) -> None:
        for proc in self.agents:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.server.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    try:
        yield r
    finally:
        r.close()


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_agent_registers_heartbeats_its_state_and_delivers(rig: Rig) -> None:
    token = token_from(cli(rig.env, "nodes", "add", "agent-1", "--role", "pi-log"))
    local = f"http://127.0.0.1:{free_port()}"
    proc = rig.agent(
        rig.config("agent-1", f'device_token = "{token}"', top=f'http_listen = "{local[7:]}"')
    )
    node = until(
        lambda: (n := rig.get("/api/nodes/agent-1"))["state"] == "active" and n,
        "the node reports itself active",
    )
    assert (node["status"], node["software_version"], node["interval_seconds"]) == (
        "online",
        "0.1.0",
        1.0,
    )
    until(lambda: len(rig.readings("agent-1")) >= 10, "readings arrive")
    health = httpx.get(f"{local}/health", timeout=5)
    assert health.status_code == 200, health.text
    assert (health.json()["status"], health.json()["state"]) == ("ok", "active")
    assert health.json()["sensors"]["sim"]["ok"] is True
    metrics = httpx.get(f"{local}/metrics", timeout=5).text
    assert "# TYPE pilog_push_stored_total counter" in metrics
    assert 'pilog_driver_ok{sensor="sim"} 1.0' in metrics
    logs = httpx.get(f"{local}/logs", params={"since": "1h"}, timeout=5).text
    assert "pi-log starting" in logs  # the agent's own log records, kept by obs
    assert stop(proc) == 0
    assert rig.get("/api/nodes/agent-1")["state"] == "stopped"
    stored = rig.readings("agent-1")
    stats = json.loads(
        subprocess.run(
            [PI_LOG, "queue", "stats", str(rig.tmp / "agent-1.toml"), "--json"],
            capture_output=True,
            check=True,
        ).stdout
    )
    assert stats["readings"] == 0  # the polite stop pushed what was left
    assert len(stored) == stats["acked_total"] == stats["last_seq"]


def test_every_state_change_is_reported_at_once_in_allowed_steps(rig: Rig) -> None:
    token = token_from(cli(rig.env, "nodes", "add", "steps-1", "--role", "pi-log"))
    # a long interval: only a report made at the change itself gets there in time
    proc = rig.agent(rig.config("steps-1", f'device_token = "{token}"', interval_s=60))
    until(lambda: rig.get("/api/nodes/steps-1")["state"] == "active", "active", within_s=20)
    assert stop(proc) == 0
    assert rig.get("/api/nodes/steps-1")["state"] == "stopped"
    events = rig.get("/api/events", node_id="steps-1", limit=100)["items"]
    changes = [
        (e["data"]["before"], e["data"]["after"])
        for e in reversed(events)
        if e["kind"].startswith("instance_")
    ]
    assert changes == [
        (None, "idle"),
        ("idle", "starting"),
        ("starting", "warming"),
        ("warming", "active"),
        ("active", "stopping"),
        ("stopping", "stopped"),
    ]
    assert "refused" not in proc_log(rig, "steps-1")


def test_an_agent_restarted_after_kill_9_waits_out_the_lease_and_delivers(rig: Rig) -> None:
    token = token_from(cli(rig.env, "nodes", "add", "phoenix-1", "--role", "pi-log"))
    config = rig.config("phoenix-1", f'device_token = "{token}"')
    first = rig.agent(config)
    until(lambda: rig.get("/api/nodes/phoenix-1")["state"] == "active", "active")
    first.kill()
    first.wait(10)
    second = rig.agent(config)  # a new instance: refused until the dead one's TTL (3 s) ends
    before = len(rig.readings("phoenix-1"))
    until(lambda: len(rig.readings("phoenix-1")) > before + 10, "readings arrive again")
    node = rig.get("/api/nodes/phoenix-1")
    assert node["state"] == "active"
    assert "another instance holds node phoenix-1" in proc_log(rig, "phoenix-1")
    assert stop(second) == 0
    stored = rig.readings("phoenix-1")
    keys = [(r["payload"]["run"], r["payload"]["sample_no"]) for r in stored]
    assert len(keys) == len(set(keys))


def proc_log(rig: Rig, node: str) -> str:
    return (rig.tmp / f"{node}.log").read_text()


def test_an_agent_with_an_enrolment_key_enrols_once_and_keeps_its_token(rig: Rig) -> None:
    key = token_from(cli(rig.env, "tokens", "add", "--scope", "enrol", "--name", "batch"))
    config = rig.config("fresh-1", f'enrolment_key = "{key}"')
    proc = rig.agent(config)
    until(lambda: (rig.tmp / "fresh-1" / "node-token").exists(), "the token is kept")
    until(lambda: len(rig.readings("fresh-1")) >= 5, "readings arrive")
    assert stop(proc) == 0
    proc = rig.agent(config)  # a restart uses the kept token (a second enrolment would get 409)
    count = len(rig.readings("fresh-1"))
    until(lambda: len(rig.readings("fresh-1")) > count + 5, "readings arrive after a restart")
    assert stop(proc) == 0


def test_a_server_outage_loses_nothing_and_keeps_the_original_timestamps(rig: Rig) -> None:
    token = token_from(cli(rig.env, "nodes", "add", "outage-1", "--role", "pi-log"))
    config = rig.config("outage-1", f'device_token = "{token}"')
    proc = rig.agent(config)
    until(lambda: len(rig.readings("outage-1")) >= 5, "readings arrive")
    rig.server.kill()
    time.sleep(OUTAGE_S)  # the outage: readings are made (10/s) while nobody answers
    rig.server.start()
    # a loaded machine makes fewer than 10/s (missed ticks are skipped): 6/s is the floor
    late_floor = int(6 * OUTAGE_S)
    until(
        lambda: len(rig.readings("outage-1")) >= late_floor + 5, "the outage's readings arrive", 120
    )
    assert stop(proc) == 0
    stored = rig.readings("outage-1")
    numbers = [r["payload"]["sample_no"] for r in stored]
    assert sorted(numbers) == list(range(1, max(numbers) + 1))  # none missing, none twice
    stats = json.loads(
        subprocess.run(
            [PI_LOG, "queue", "stats", str(config), "--json"], capture_output=True, check=True
        ).stdout
    )
    assert (stats["readings"], stats["dropped_total"], stats["dead_letters"]) == (0, 0, 0)
    assert stats["last_seq"] == max(numbers), "every reading the agent made is on the server"
    delays = [
        datetime.fromisoformat(r["received_at"]) - datetime.fromisoformat(r["timestamp"])
        for r in stored
    ]
    # the outage's readings arrived late, stamped with the time they were made
    assert len([d for d in delays if d > timedelta(seconds=1)]) >= late_floor
    assert max(delays) > timedelta(seconds=OUTAGE_S)
    assert {r["timestamp_source"] for r in stored} == {"node"}


def test_a_refused_token_keeps_everything_until_it_works(rig: Rig) -> None:
    token = token_from(cli(rig.env, "nodes", "add", "revoked-1", "--role", "pi-log"))
    local = f"http://127.0.0.1:{free_port()}"
    config = rig.config(
        "revoked-1",
        'device_token = "bwn_not_a_real_token_at_all_000000"',
        top=f'http_listen = "{local[7:]}"',
        slow_retry_s=1,
    )
    proc = rig.agent(config)
    time.sleep(3)
    health = httpx.get(f"{local}/health", timeout=5)
    assert (health.status_code, health.json()["status"]) == (503, "failing")
    assert "401" in health.json()["push"]["problem"]
    assert stop(proc) == 0
    stats = json.loads(
        subprocess.run(
            [PI_LOG, "queue", "stats", str(config), "--json"], capture_output=True, check=True
        ).stdout
    )
    assert stats["readings"] >= 20
    assert stats["dead_letters"] == stats["dropped_total"] == 0
    assert "the server refuses our readings" in config.with_suffix(".log").read_text()
    config.write_text(
        config.read_text()
        .replace("bwn_not_a_real_token_at_all_000000", token)
        .replace(local[7:], f"127.0.0.1:{free_port()}")
    )
    proc = rig.agent(config)
    until(lambda: len(rig.readings("revoked-1")) >= stats["readings"], "the kept readings arrive")
    assert stop(proc) == 0


def test_a_second_agent_on_the_same_state_directory_is_refused(rig: Rig) -> None:
    token = token_from(cli(rig.env, "nodes", "add", "twin-1", "--role", "pi-log"))
    config = rig.config("twin-1", f'device_token = "{token}"')
    first = rig.agent(config)
    until(lambda: (rig.tmp / "twin-1" / "queue.sqlite3").exists(), "the first agent runs")
    second = subprocess.run(
        [PI_LOG, "run", str(config)], capture_output=True, text=True, timeout=30
    )
    assert second.returncode == 1
    assert "another pi-log process runs on" in second.stderr
    assert stop(first) == 0
