"""Room: server (demo orchestration). ``beamwarden demo``: the server and real pi-log agents.

:func:`prepare` is the demo's start-up in the database: it puts the demo nodes in the inventory,
issues their node tokens and a ``read`` token, through the services the CLI built (the CLI owns
the store). :func:`run` serves the app of ``create_app`` with uvicorn in-process on loopback,
writes each node's agent config and starts one ``pi-log run`` per node (:mod:`.agents`), prints
:func:`banner`, and on Ctrl-C, SIGTERM or after ``duration_s`` stops the agents first, then the
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlencode

import uvicorn

from beamwarden.protocol import Scope
from beamwarden.server.app import create_app
from beamwarden.server.demo.agents import (
    CONFIG_FILE,
    KINDS,
    LOG_FILE,
    AgentProcess,
    Cycle,
    agent_command,
    agent_config,
    write_private,
)
from beamwarden.server.errors import AlreadyExists, ServerError
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings
from beamwarden.server.user_records import Role

log = logging.getLogger("beamwarden.demo")

#: the role the demo nodes have, and the name of the read token each start issues
ROLE = "pi-log"
READ_TOKEN_NAME = "demo-read"
#: the demo's dashboard login (an admin; its password is new at every start)
ADMIN_USER = "admin"
#: the flaky node's agent runs 45 s, then is stopped for 15 s (offline after 10 s), every minute
FLAKY = Cycle(up_s=45.0, down_s=15.0)
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DemoError(ServerError):
    code = "demo_failed"


@dataclass(frozen=True, slots=True)
class DemoNode:
    node_id: str
    kind: str
    token: str


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """What :func:`prepare` set up: the nodes with their fresh tokens, and a read token."""

    nodes: list[DemoNode]
    read_token: str
    skipped: list[str]
    """Demo nodes an operator revoked: left out (a revoked node id stays revoked)."""
    admin_password: str = ""
    """The dashboard login of :data:`ADMIN_USER`, new at every start."""


def demo_node_ids(count: int) -> list[tuple[str, str]]:
    """``(node_id, kind)`` of the first ``count`` demo nodes: ``demo-geiger-01``, … cycling kinds."""
    return [
        (f"demo-{KINDS[i % len(KINDS)]}-{i // len(KINDS) + 1:02d}", KINDS[i % len(KINDS)])
        for i in range(count)
    ]


async def prepare(services: Services, count: int) -> DemoPlan:
    """The demo's start-up in the database, one step each; the plan carries what :func:`banner`
    prints. Idempotent: a database of an earlier run is brought up to date."""
    nodes, skipped = await add_nodes(services, count)
    read_token = await issue_read_token(services)
    admin_password = await reset_admin(services)
    return DemoPlan(nodes, read_token, skipped, admin_password)


async def add_nodes(services: Services, count: int) -> tuple[list[DemoNode], list[str]]:
    """Add the demo nodes, or give those of an earlier run new tokens; a revoked one is skipped."""
    nodes: list[DemoNode] = []
    skipped: list[str] = []
    for node_id, kind in demo_node_ids(count):
        try:
            _, issued = await services.registry.add_node(node_id, ROLE, actor="demo")
        except AlreadyExists:
            if (await services.registry.get(node_id)).row.revoked_us is not None:
                skipped.append(node_id)
                continue
            await services.credentials.revoke_node_tokens(node_id)
            issued = await services.credentials.issue_node_token(node_id)
        nodes.append(DemoNode(node_id, kind, issued.secret))
    return nodes, skipped


async def issue_read_token(services: Services) -> str:
    """A fresh ``read`` token; the one of an earlier run is revoked."""
    for token in await services.credentials.list_tokens():
        if token.kind == "user" and token.name == READ_TOKEN_NAME and token.revoked_us is None:
            await services.credentials.revoke(token.id)
    return (await services.credentials.issue(Scope.READ, READ_TOKEN_NAME)).secret


async def reset_admin(services: Services) -> str:
    """The dashboard user :data:`ADMIN_USER` (an admin) with a new random password."""
    users = services.users
    if users is None:
        return ""
    password = secrets.token_urlsafe(9)
    try:
        await users.add_user(ADMIN_USER, password, Role.ADMIN, actor="demo")
    except AlreadyExists:
        await users.set_password(ADMIN_USER, password, actor="demo")
        await users.set_disabled(ADMIN_USER, False, actor="demo")
    return password


class _InProcessServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: the demo stops its agents first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: any free port), or a clear error if the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another port with --port"
        ) from None
    return sock


def banner(url: str, plan: DemoPlan, database_url: str, agents_dir: Path) -> str:
    """Everything the demo prints at start, in one place."""
    auth = f'-H "Authorization: Bearer {plan.read_token}"'
    climate = next((n.node_id for n in plan.nodes if n.kind == "climate"), "demo-climate-01")
    series = urlencode(
        {"node_id": climate, "sensor_id": "bme280@0x76", "field": "temperature_c", "bucket": "10s"}
    )
    lines = [
        f"Beamwarden demo running at {url}",
        f"  dashboard:   {url}/  (log in as {ADMIN_USER} / {plan.admin_password})",
        f"  API docs:    {url}/docs",
        f"  database:    {database_url}",
        f"  nodes:       {', '.join(n.node_id for n in plan.nodes) or '(none)'}",
        f"  agents:      one pi-log each; config and log in {agents_dir}/<node>/",
        f"  read token:  {plan.read_token}",
        "",
        "Try:",
        f"  curl {auth} {url}/api/nodes",
        f'  curl {auth} "{url}/api/series?{series}"',
        "",
        "Press Ctrl-C to stop.",
    ]
    if plan.skipped:
        lines.insert(7, f"  left out:    {', '.join(plan.skipped)} (revoked)")
    return "\n".join(lines)


def demo_agents(plan: DemoPlan, agents_dir: Path, api_url: str, flaky: Cycle) -> list[AgentProcess]:
    """Write each node's agent config (a fresh token every start) and make its supervisor."""
    agents = []
    for node in plan.nodes:
        folder = agents_dir.resolve() / node.node_id
        config = folder / CONFIG_FILE
        text = agent_config(node.node_id, node.kind, node.token, api_url, ROLE, folder / "state")
        write_private(config, text)
        cycle = flaky if node.kind == "flaky" else None
        agents.append(AgentProcess(node.node_id, agent_command(config), folder / LOG_FILE, cycle))
    return agents


async def run(
    settings: ServerSettings,
    plan: DemoPlan,
    agents_dir: Path,
    *,
    flaky: Cycle = FLAKY,
    duration_s: float | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the app and run the agents until Ctrl-C, SIGTERM or ``duration_s``; then stop the
    agents (they push what they hold while the server is still there), then the server."""
    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    sock = listen(settings.host, settings.port)
    port = sock.getsockname()[1]
    url = f"http://{settings.host}:{port}"
    server = _InProcessServer(
        uvicorn.Config(
            create_app(settings),
            http="httptools",
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    agents = demo_agents(plan, agents_dir, url, flaky)
    supervisors: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait for the agents' last push
            for agent in agents:
                agent.kill()
        stop.set()

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    serving.add_done_callback(lambda _: stop.set())
    try:
        while not server.started:
            if serving.done():
                raise DemoError("the server stopped while starting (see the log above)")
            await asyncio.sleep(0.02)
        supervisors.extend(
            asyncio.create_task(agent.run(stop), name=agent.node_id) for agent in agents
        )
        print(banner(url, plan, settings.database_url, agents_dir), file=out, flush=True)
        if duration_s is not None:
            loop.call_later(duration_s, stop.set)
        await stop.wait()
        print("Stopping the agents, then the server …", file=out, flush=True)
    finally:
        stop.set()
        results = await asyncio.gather(*supervisors, return_exceptions=True)
        for task, result in zip(supervisors, results, strict=True):
            if isinstance(result, Exception):
                log.error("the agent of %s failed", task.get_name(), exc_info=result)
        server.should_exit = True
        await serving
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
