"""The agent's one promise, proven with real processes: every reading committed to its queue
reaches the server exactly once, however often the agent is ``kill -9``ed.

The numbered simulator produces ``(run, sample_no)`` pairs and the agent writes each reading to a
commit log once it is committed to the queue. The agent is killed at random moments — while
drivers read, while a batch is in flight, between the server's answer and the queue's delete —
and restarted each time; a last run drains the queue. Then every committed number must be on the
server once, and nothing on the server twice. ``AGENT_KILLS`` sets the number of kills (20 by
default, to stay near a minute; ``AGENT_KILLS=100`` for the full figure).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.processes import BIN, ServerProcess, cli, server_env, token_from

pytestmark = pytest.mark.slow

PI_LOG = str(BIN / "pi-log")
NODE = "dur-agent"


def agent_config(tmp_path: Path, url: str, token: str) -> Path:
    path = tmp_path / "pi-log.toml"
    path.write_text(
        f"""
device_id = "{NODE}"
api_url = "{url}"
device_token = "{token}"
state_dir = "{tmp_path / "state"}"
heartbeat_interval_s = 1
commit_log = "{tmp_path / "commits.log"}"

[push]
batch_max = 200
batch_age_s = 0.05
backlog_rate = 1000000
backoff_base_s = 0.1
backoff_max_s = 1

[[sensor]]
type = "sim"
driver = "simulator"
numbered = true
interval_ms = 20
per_read = 5

[[sensor]]
type = "sim"
id = "sim-b"
driver = "simulator"
numbered = true
interval_ms = 7
"""
    )
    return path


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([PI_LOG, "run", str(config)], stdout=out, stderr=subprocess.STDOUT)


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def wait_for_growth(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the running agent has committed something (it is past start-up)."""
    before = size(path)
    deadline = time.monotonic() + 30
    while size(path) <= before:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the agent committed nothing for 30 s"
        time.sleep(0.01)


def committed(commit_log: Path) -> dict[str, tuple[str, int]]:
    """reading_id → (run, sample_no) of every reading the agent said it committed."""
    out: dict[str, tuple[str, int]] = {}
    for line in commit_log.read_bytes().splitlines():
        try:
            reading_id, body = line.split(b"\t", 1)
            payload = json.loads(body)["payload"]
        except ValueError:
            continue  # a line cut by the kill: its reading is not claimed as committed
        rid = reading_id.decode()
        assert rid not in out, f"reading id {rid} committed twice"
        out[rid] = (payload["run"], payload["sample_no"])
    return out


def on_server(url: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            params: dict[str, Any] = {"node_id": NODE, "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            answer = client.get(
                "/api/readings", params=params, headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            items += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                return items


def test_every_committed_reading_reaches_the_server_exactly_once_through_kill_9(
    tmp_path: Path,
) -> None:
    kills = int(os.environ.get("AGENT_KILLS", "20"))
    seed = int(os.environ.get("AGENT_KILL_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    env = server_env(f"sqlite:///{tmp_path}/server.db")
    server = ServerProcess(env)
    server.start()
    try:
        node_token = token_from(cli(env, "nodes", "add", NODE, "--role", "pi-log"))
        read_token = token_from(cli(env, "tokens", "add", "--scope", "read", "--name", "dur"))
        config = agent_config(tmp_path, server.url, node_token)
        commit_log, agent_log = tmp_path / "commits.log", tmp_path / "agent.log"
        for _ in range(kills):
            proc = start_agent(config, agent_log)
            wait_for_growth(commit_log, proc, agent_log)
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        expected = committed(commit_log)
        # the last run: let it drain, then stop it the polite way
        proc = start_agent(config, agent_log)
        wait_for_growth(commit_log, proc, agent_log)
        deadline = time.monotonic() + 60
        while True:
            stats = subprocess.run(
                [PI_LOG, "queue", "stats", str(config), "--json"],
                capture_output=True,
                check=True,
                timeout=30,
            )
            if json.loads(stats.stdout)["readings"] < 50:
                break
            assert time.monotonic() < deadline, f"the queue does not drain: {stats.stdout!r}"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, agent_log.read_text()[-3000:]
        expected = committed(commit_log)
        stored = on_server(server.url, read_token)
    finally:
        server.stop()

    context = f"(seed {seed}; agent log {agent_log})"
    numbers = Counter((r["payload"]["run"], r["payload"]["sample_no"]) for r in stored)
    twice = [key for key, count in numbers.items() if count > 1]
    assert twice == [], f"stored more than once: {twice[:10]} {context}"
    missing = [rid for rid, key in expected.items() if key not in numbers]
    assert missing == [], (
        f"{len(missing)} committed readings never arrived: {missing[:10]} {context}"
    )
    ids = {r["reading_id"]: (r["payload"]["run"], r["payload"]["sample_no"]) for r in stored}
    assert all(ids[rid] == key for rid, key in expected.items()), context
    assert len(expected) > 20 * kills, context  # the runs really produced readings
