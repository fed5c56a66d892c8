"""Room: server (demo orchestration). ``beamwarden demo``: the server and a few nodes, one process.

:func:`prepare` puts the demo nodes in the inventory and issues their node tokens and a ``read``
token, through the services the CLI built (the CLI owns the store). :func:`run` serves the app of
``create_app`` with uvicorn in-process on loopback, runs the simulators against it over HTTP, and on
Ctrl-C, SIGTERM or after ``duration_s`` stops the simulators first, then the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlencode

import httpx
import uvicorn

from beamwarden import __version__
from beamwarden.protocol import Scope
from beamwarden.server.app import create_app
from beamwarden.server.demo.simulator import KINDS, NodeIdentity, make_node
from beamwarden.server.errors import AlreadyExists, ServerError
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings

log = logging.getLogger("beamwarden.demo")

#: the role the simulated nodes have, and the name of the read token each start issues
ROLE = "pi-log"
READ_TOKEN_NAME = "demo-read"
#: how long the simulators get to push what they queued before they are cancelled
SIMULATOR_STOP_S = 5.0
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


def demo_node_ids(count: int) -> list[tuple[str, str]]:
    """``(node_id, kind)`` of the first ``count`` demo nodes: ``demo-geiger-01``, … cycling kinds."""
    return [
        (f"demo-{KINDS[i % len(KINDS)]}-{i // len(KINDS) + 1:02d}", KINDS[i % len(KINDS)])
        for i in range(count)
    ]


async def prepare(services: Services, count: int) -> DemoPlan:
    """Add the demo nodes (or give those of an earlier run new tokens) and issue a read token."""
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
    for token in await services.credentials.list_tokens():
        if token.kind == "user" and token.name == READ_TOKEN_NAME and token.revoked_us is None:
            await services.credentials.revoke(token.id)
    read = await services.credentials.issue(Scope.READ, READ_TOKEN_NAME)
    return DemoPlan(nodes, read.secret, skipped)


class _InProcessServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: the demo stops its simulators first."""

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


def banner(url: str, plan: DemoPlan, database_url: str) -> str:
    auth = f'-H "Authorization: Bearer {plan.read_token}"'
    climate = next((n.node_id for n in plan.nodes if n.kind == "climate"), "demo-climate-01")
    series = urlencode(
        {"node_id": climate, "sensor_id": "bme280@0x76", "field": "temperature_c", "bucket": "10s"}
    )
    lines = [
        f"Beamwarden demo running at {url}",
        f"  API docs:    {url}/docs",
        f"  database:    {database_url}",
        f"  nodes:       {', '.join(n.node_id for n in plan.nodes) or '(none)'}",
        f"  read token:  {plan.read_token}",
        "",
        "Try:",
        f"  curl {auth} {url}/api/nodes",
        f'  curl {auth} "{url}/api/series?{series}"',
        "",
        "Press Ctrl-C to stop.",
    ]
    if plan.skipped:
        lines.insert(5, f"  left out:    {', '.join(plan.skipped)} (revoked)")
    return "\n".join(lines)


async def run(
    settings: ServerSettings,
    plan: DemoPlan,
    *,
    duration_s: float | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the app and run the simulators until Ctrl-C, SIGTERM or ``duration_s``."""
    out = out or sys.stdout
    # one line per simulated request would drown what the demo has to show
    logging.getLogger("httpx").setLevel(logging.WARNING)
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

    simulators: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait for the simulators' last push
            for task in simulators:
                task.cancel()
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
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
            nodes = [
                make_node(
                    n.kind,
                    NodeIdentity(
                        n.node_id, n.token, ROLE, f"beamwarden-demo/{__version__}", {"demo": n.kind}
                    ),
                    client,
                    random.Random(),
                )
                for n in plan.nodes
            ]
            simulators.extend(
                asyncio.create_task(node.run(stop), name=node.identity.node_id) for node in nodes
            )
            print(banner(url, plan, settings.database_url), file=out, flush=True)
            if duration_s is not None:
                loop.call_later(duration_s, stop.set)
            await stop.wait()
            print("Stopping the simulated nodes, then the server …", file=out, flush=True)
            _, late = await asyncio.wait(simulators, timeout=SIMULATOR_STOP_S)
            for task in late:
                task.cancel()
            for task, result in zip(
                simulators, await asyncio.gather(*simulators, return_exceptions=True), strict=True
            ):
                if isinstance(result, Exception):
                    log.error("simulated node %s failed", task.get_name(), exc_info=result)
    finally:
        server.should_exit = True
        await serving
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
