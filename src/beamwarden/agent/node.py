"""Room: agent. The node's side of the fleet protocol: enrolment, registration, heartbeats.

* **Token.** ``device_token`` from the config, or the token kept in ``state_dir/node-token``. With
  an ``enrolment_key`` and no kept token, the agent enrols once (``POST /api/nodes/register`` with
  the key), writes the token it receives to the state directory (mode 0600, atomically) and uses it
  from then on; the key is not needed again.
* **Registration** on start (hostname, IP, software version, tags), retried with backoff.
* **Heartbeats** every ``heartbeat_interval_s`` with a random ``instance_id`` per process and the
  instance ``state`` (idle → starting → warming → active; stopping → stopped on shutdown). A state
  change is reported at once, not at the next interval, and every intermediate state is reported
  once, in order (:func:`state_path`), so the server sees only allowed transitions. Heartbeats are
  sent one at a time (a lock), so two of them never overtake each other on the wire. If the server
  refuses a transition (``invalid_transition``: it kept another state for this instance, e.g. a
  heartbeat it acknowledged but lost in a crash), the agent takes the server's state from the
  answer and walks from there.
* **409**: another instance holds this node (a cloned SD card, two agents on one config, or our own
  previous process killed a moment ago). The agent stops writing readings, logs who holds the node
  once, keeps heartbeating every interval, and resumes writing when a heartbeat is accepted again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from beamwarden.agent.clock import Clock, Offload, sleep_or_wake, with_timeout
from beamwarden.agent.config import AgentConfig
from beamwarden.agent.push.answers import Action, Verdict, classify, no_answer
from beamwarden.agent.push.pacing import Backoff, Jitter, equal_jitter
from beamwarden.protocol import CURRENT, InstanceState

log = logging.getLogger("beamwarden.agent.node")

TOKEN_FILE = "node-token"
#: the instance's life, in order; walking it forward takes only allowed steps
_RING = [
    InstanceState.IDLE,
    InstanceState.STARTING,
    InstanceState.WARMING,
    InstanceState.ACTIVE,
    InstanceState.STOPPING,
    InstanceState.STOPPED,
]
_LIVE = (InstanceState.STARTING, InstanceState.WARMING, InstanceState.ACTIVE)
_ENDING = (InstanceState.STOPPING, InstanceState.STOPPED)
#: what the server says when it refuses a state change (fleet.errors.TransitionRefused)
_REFUSED_FROM = re.compile(r"instance state ([a-z]+) →")
Metrics = dict[str, float | bool]


def software_version() -> str:
    try:
        return version("beamwarden")
    except PackageNotFoundError:
        return "0+unknown"


def local_ip(api_url: str) -> str:
    """The address this node reaches the server from (a UDP connect sends no packet)."""
    parts = urlsplit(api_url)
    host = parts.hostname or "127.0.0.1"
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, parts.port or 443))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def state_path(reported: InstanceState | None, desired: InstanceState) -> list[InstanceState]:
    """The states to report, in order, to move the server from ``reported`` to ``desired``.

    A new instance (``reported is None``) starts its report at ``idle``; a stop from a live state
    goes through ``stopping``; anything else walks the ring forward, which is always allowed.
    """
    if reported == desired:
        return [desired]
    if reported is None:
        return _RING[: _RING.index(desired) + 1] if desired in _LIVE else [desired]
    if desired in _ENDING:
        if reported in _LIVE:
            return _RING[_RING.index(InstanceState.STOPPING) : _RING.index(desired) + 1]
        if reported is InstanceState.IDLE:
            return []  # never started: nothing to stop
    start, end = _RING.index(reported), _RING.index(desired)
    return (_RING[start + 1 :] + _RING[:start])[: (end - start) % len(_RING)]


def server_state(verdict: Verdict) -> InstanceState | None:
    """The state the server kept for us, from its ``invalid_transition`` answer."""
    if verdict.code != "invalid_transition":
        return None
    found = _REFUSED_FROM.search(verdict.message)
    try:
        return None if found is None else InstanceState(found.group(1))
    except ValueError:
        return None


def save_token(state_dir: Path, token: str) -> None:
    """Write the enrolled token durably: temp file, fsync, rename, fsync the directory."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{TOKEN_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, state_dir / TOKEN_FILE)
    dir_fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def kept_token(state_dir: Path) -> str | None:
    try:
        token = (state_dir / TOKEN_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


class NodeLink:
    def __init__(
        self,
        config: AgentConfig,
        client: httpx.AsyncClient,
        clock: Clock,
        metrics: Callable[[], Metrics] = dict,
        jitter: Jitter = equal_jitter,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self.config = config
        self.offload = offload
        self.client = client
        self.clock = clock
        self.metrics = metrics
        self.jitter = jitter
        self.instance_id = secrets.token_hex(8)
        self.started = clock.monotonic()
        self.version = software_version()
        self.ip = "127.0.0.1"
        self.token: str | None = config.device_token or kept_token(config.state_dir)
        self.have_token = asyncio.Event()
        if self.token:
            self.have_token.set()
        self.state = InstanceState.STARTING
        self.reported: InstanceState | None = None
        self.registered = False
        #: who holds this node when a 409 told us (None: we may write)
        self.conflict: str | None = None
        self.on_conflict: Callable[[str | None], None] = lambda holder: None
        #: whether the instance may call itself active (warming → active)
        self.ready: Callable[[], bool] = lambda: True
        self.heartbeats_sent = 0
        self.heartbeat_errors = 0
        #: set when the state changes, so the heartbeat loop reports it at once
        self.changed = asyncio.Event()
        self._sending = asyncio.Lock()

    def set_state(self, state: InstanceState) -> None:
        """Change the instance state; the heartbeat loop reports it without waiting."""
        if state is not self.state:
            self.state = state
            self.changed.set()

    def poke(self) -> None:
        """Something happened that may make a warming instance active (a push was stored)."""
        if self.state is InstanceState.WARMING and self.ready():
            self.changed.set()

    async def _post(self, path: str, body: dict[str, Any], token: str) -> tuple[Verdict, Any]:
        try:
            answer = await self.client.post(
                path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            return no_answer(exc), None
        verdict = classify(answer.status_code, answer.headers, answer.content, 0, self.clock.now())
        try:
            document = answer.json()
        except ValueError:
            document = None
        return verdict, document

    def _registration(self) -> dict[str, Any]:
        return {
            "node_id": self.config.node_id,
            "role": self.config.role,
            "hostname": socket.gethostname()[:253] or "unknown",
            "ip_address": self.ip,
            "software_version": self.version,
            "tags": self.config.tags,
        }

    async def enrol(self) -> Verdict:
        """Enrol with the key; on success keep the token in the state directory."""
        assert self.config.enrolment_key is not None
        verdict, document = await self._post(
            "/api/nodes/register", self._registration(), self.config.enrolment_key
        )
        token = document.get("token") if isinstance(document, dict) else None
        if verdict.action is Action.STORED and isinstance(token, str) and token:
            await self.offload(save_token, self.config.state_dir, token)
            self.token = token
            self.registered = True
            self.have_token.set()
            log.info(
                "enrolled as %s; the token is kept in %s",
                self.config.node_id,
                self.config.state_dir,
            )
        elif verdict.action is Action.STORED:
            verdict = Verdict(Action.REFUSED, verdict.status, "enrolment answered without a token")
        if verdict.action is Action.CONFLICT:
            log.error(
                "node id %s is already enrolled (%s): an admin must reopen its enrolment "
                "(beamwarden nodes enrol %s), or give this node its device_token",
                self.config.node_id,
                verdict.message,
                self.config.node_id,
            )
        return verdict

    async def register(self) -> Verdict:
        assert self.token is not None
        verdict, _ = await self._post("/api/nodes/register", self._registration(), self.token)
        if verdict.action is Action.STORED:
            self.registered = True
        return verdict

    def telemetry(self, state: InstanceState) -> dict[str, Any]:
        return {
            "node_id": self.config.node_id,
            "role": self.config.role,
            "timestamp": self.clock.now().isoformat(),
            "uptime_seconds": round(self.clock.monotonic() - self.started, 3),
            "software_version": self.version,
            "ip_address": self.ip,
            "protocol_version": CURRENT,
            "interval_seconds": self.config.heartbeat_interval_s,
            "instance_id": self.instance_id,
            "state": state.value,
            "metrics": self.metrics(),
            "tags": self.config.tags,
        }

    async def heartbeat(self) -> Verdict:
        """Report the current state (and every state on the way to it), one heartbeat at a time."""
        async with self._sending:
            verdict = await self._walk()
            kept = server_state(verdict)
            if kept is not None and kept is not self.reported:
                log.warning(
                    "the server kept state %s for this instance (we thought %s); walking from it",
                    kept,
                    self.reported,
                )
                self.reported = kept
                verdict = await self._walk()
        self._note_conflict(verdict)
        return verdict

    async def _walk(self) -> Verdict:
        assert self.token is not None
        verdict = Verdict(Action.STORED, None, "nothing sent")
        for state in state_path(self.reported, self.state):
            verdict, _ = await self._post("/api/telemetry", self.telemetry(state), self.token)
            self.heartbeats_sent += 1
            if verdict.action is not Action.STORED:
                self.heartbeat_errors += 1
                break
            self.reported = state
        return verdict

    def _note_conflict(self, verdict: Verdict) -> None:
        if verdict.action is Action.CONFLICT and verdict.code != "invalid_transition":
            if self.conflict is None:
                log.error(
                    "another instance holds node %s; this one stops writing: %s",
                    self.config.node_id,
                    verdict.message,
                )
            self.conflict = verdict.message
            self.on_conflict(self.conflict)
        elif verdict.action is Action.STORED and self.conflict is not None:
            log.info("node %s is ours again; writing resumes", self.config.node_id)
            self.conflict = None
            self.on_conflict(None)

    async def _until_done(self, attempt: Callable[[], Any], what: str, stop: asyncio.Event) -> bool:
        """Retry ``attempt`` until it is stored; backoff for transient failures, slowly otherwise."""
        backoff = Backoff(
            self.config.push.backoff_base_s, self.config.push.backoff_max_s, self.jitter
        )
        failing = False
        while not stop.is_set():
            verdict: Verdict = await attempt()
            if verdict.action is Action.STORED:
                if failing:
                    log.info("%s succeeded", what)
                return True
            if verdict.action in (Action.REFUSED, Action.CONFLICT):
                log.error(
                    "%s refused: %s (retrying every %g s)",
                    what,
                    verdict.message,
                    self.config.push.slow_retry_s,
                )
                delay = self.config.push.slow_retry_s
            else:
                if not failing:
                    log.warning("%s fails, retrying with backoff: %s", what, verdict.message)
                delay = verdict.retry_after_s or backoff.next_delay()
            failing = True
            await sleep_or_wake(self.clock, delay, stop)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Get a token, register, then heartbeat every interval until ``stop``."""
        self.ip = await self.offload(local_ip, self.config.api_url)
        if self.token is None and not await self._until_done(self.enrol, "enrolment", stop):
            return
        if not self.registered and not await self._until_done(self.register, "registration", stop):
            return
        if self.state is InstanceState.STARTING:
            self.set_state(InstanceState.WARMING)
        while not stop.is_set():
            if self.state is InstanceState.WARMING and self.ready():
                self.set_state(InstanceState.ACTIVE)
            self.changed.clear()
            verdict = await self.heartbeat()
            interval = self.config.heartbeat_interval_s
            if verdict.action is Action.REFUSED:
                interval = max(interval, self.config.push.slow_retry_s)
            # A 409 is asked again every interval: the lease of a dead instance of ours (kill -9,
            # power cut) expires within a few intervals, and then this instance writes again.
            await sleep_or_wake(self.clock, interval, stop, self.changed)

    async def farewell(self) -> None:
        """On shutdown: report ``stopping`` then ``stopped`` (best effort, short timeouts)."""
        if self.token is None or self.conflict is not None:
            return
        self.set_state(InstanceState.STOPPED)
        try:
            await with_timeout(self.clock, self.heartbeat(), 10.0)
        except TimeoutError:
            log.warning("the last heartbeat (stopped) got no answer in time")
