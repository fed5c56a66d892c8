"""Room: server (demo agents). The demo's nodes are real ``pi-log run`` processes.

The server never imports the agent (import-linter: they are independent): the demo writes each
node a TOML config in the agent's documented shape (docs/agent.md) and starts
``python -m beamwarden.agent.cli run CONFIG`` as a child process, its log in a file beside the
config. :class:`AgentProcess` supervises one agent: it starts it, and stops it with SIGTERM (the
agent reports ``stopping``/``stopped`` and pushes what it queued), SIGKILL after
:data:`STOP_TIMEOUT_S`. With a :class:`Cycle` it stops and restarts its agent for ever, so that the
node's status moves online → degraded → offline and back.

Every agent runs in a session of its own, so a Ctrl-C in the terminal reaches only the demo, which
stops the agents before the server (they still have a server to push to). An agent also asks the
kernel for SIGTERM when the demo dies (``PR_SET_PDEATHSIG``), so not even a ``kill -9`` of the
demo leaves one behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("beamwarden.demo")

#: the kinds of demo node, in the order the demo adds them
KINDS = ("geiger", "climate", "system", "flaky")
#: seconds between heartbeats: a status change (online after 4 s without one, offline after 10 s)
#: shows within seconds
HEARTBEAT_S = 2
#: a SIGTERM'd agent gets this long (it pushes for up to 5 s) before SIGKILL
STOP_TIMEOUT_S = 10.0
CONFIG_FILE = "pi-log.toml"
LOG_FILE = "pi-log.log"

SensorTable = dict[str, str | int]

#: the ``[[sensor]]`` tables of each kind of node (the simulator and system drivers of pi-log)
SENSORS: dict[str, list[SensorTable]] = {
    "geiger": [
        {
            "type": "geiger",
            "driver": "simulator",
            "values": "geiger",
            "id": "geiger-0",
            "interval_ms": 1000,
        },
    ],
    "climate": [
        {
            "type": "climate",
            "driver": "simulator",
            "values": "climate",
            "id": "bme280@0x76",
            "interval_ms": 2000,
        },
    ],
    "system": [{"type": "system", "driver": "system", "id": "system", "interval_ms": 5000}],
    "flaky": [
        {
            "type": "climate",
            "driver": "simulator",
            "values": "climate",
            "id": "sht31@0x44",
            "interval_ms": 2000,
        },
    ],
}

#: Run by the child before it becomes pi-log: ask for SIGTERM when the parent (the demo) dies,
#: and give up if it already has. Linux only; elsewhere the agent simply runs.
_GUARD = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
os.execv(sys.executable, [sys.executable, "-m", "beamwarden.agent.cli", *sys.argv[2:]])
"""


def toml_value(value: str | int | float | bool | Mapping[str, str]) -> str:
    """A TOML value: JSON's strings and numbers are valid TOML, tables become inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=True)


def agent_config(
    node_id: str, kind: str, token: str, api_url: str, role: str, state_dir: Path
) -> str:
    """The TOML config of a demo node's agent."""
    top: dict[str, str | int | Mapping[str, str]] = {
        "device_id": node_id,
        "api_url": api_url,
        "device_token": token,
        "role": role,
        "state_dir": str(state_dir),
        "heartbeat_interval_s": HEARTBEAT_S,
        "tags": {"demo": kind},
    }
    lines = [
        "# Written by `beamwarden demo` at every start (a fresh token each time); see docs/agent.md",
        *(f"{key} = {toml_value(value)}" for key, value in top.items()),
    ]
    for table in SENSORS[kind]:
        lines += ["", "[[sensor]]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (a config holds the node's token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)  # a file of an earlier run may have had other bits


@dataclass(frozen=True, slots=True)
class Cycle:
    """Run for ``up_s``, stop, stay down for ``down_s``, start again."""

    up_s: float
    down_s: float


def agent_command(config: Path) -> list[str]:
    return [sys.executable, "-c", _GUARD, str(os.getpid()), "run", str(config)]


def last_lines(path: Path, count: int = 5) -> list[str]:
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as file:
        return [line.rstrip() for line in deque(file, count)]
    return []


class AgentProcess:
    """One demo node's ``pi-log run``: started, stopped, restarted on its :class:`Cycle`."""

    def __init__(
        self, node_id: str, command: Sequence[str], log_path: Path, cycle: Cycle | None = None
    ) -> None:
        self.node_id = node_id
        self.command = list(command)
        self.log_path = log_path
        self.cycle = cycle
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the agent going (on its cycle) until ``stop``; then stop it."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                proc = await self._start()
                exited = asyncio.ensure_future(proc.wait())
                up_s = self.cycle.up_s if self.cycle is not None else None
                await asyncio.wait(
                    {stopping, exited}, timeout=up_s, return_when=asyncio.FIRST_COMPLETED
                )
                if exited.done():
                    self._report_exit(exited.result())
                    return
                exited.cancel()
                await self.terminate()
                if self.cycle is None or stop.is_set():
                    return
                log.info("%s: agent stopped, back in %g s", self.node_id, self.cycle.down_s)
                await asyncio.wait({stopping}, timeout=self.cycle.down_s)
        finally:
            stopping.cancel()
            await self.terminate()

    async def _start(self) -> asyncio.subprocess.Process:
        self.starts += 1
        with self.log_path.open("ab") as log_file:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # a Ctrl-C is the demo's to hand on, in order
            )
        if self.starts > 1:
            log.info("%s: agent started again (pid %d)", self.node_id, self.proc.pid)
        return self.proc

    def _report_exit(self, code: int) -> None:
        tail = "\n    ".join(last_lines(self.log_path))
        log.error(
            "%s: pi-log exited on its own with code %d; the end of %s:\n    %s",
            self.node_id,
            code,
            self.log_path,
            tail or "(empty)",
        )
        self.proc = None

    async def terminate(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the agent, SIGKILL it if it is not gone within ``timeout_s``; wait for it."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                log.warning("%s: pi-log did not stop within %g s; killed", self.node_id, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        finally:
            self.proc = None

    def kill(self) -> None:
        """SIGKILL at once (a second Ctrl-C); :meth:`run` still waits for the process."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
