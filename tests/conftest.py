"""Shared fixtures: the app on a real database (SQLite file, or a throwaway PostgreSQL database),
an httpx client through the ASGI app, a fake clock, and helpers to make nodes and tokens."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from beamwarden.protocol import Scope
from beamwarden.server.app import create_app
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Each test leaves logging as it found it. The CLI, Alembic's ``fileConfig`` and obs install
    handlers on the root logger and set levels; a handler left on a test's captured (and then
    closed) stream, or a level left lower, breaks the output of the tests after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass
class Server:
    """The app, its services and a client through its ASGI interface."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    backend: str

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def node(self, node_id: str = "node-1", role: str = "pi-log", relay: bool = False) -> str:
        """Add a node; return its token."""
        _, token = await self.services.registry.add_node(node_id, role, relay)
        return token.secret

    async def user(self, scope: Scope = Scope.READ) -> str:
        return (await self.services.credentials.issue(scope, f"test-{scope.value}")).secret


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/beamwarden.db"
        return
    from tests.fixtures.databases import throwaway_postgres

    async with throwaway_postgres() as url:
        yield url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or with indirect parametrisation) to change settings."""
    return {}


@pytest.fixture
async def server(
    database_url: str, clock: FakeClock, settings_overrides: dict[str, Any]
) -> AsyncIterator[Server]:
    settings = ServerSettings(
        database_url=database_url,
        log_format="text",
        heartbeat_flush_s=0.05,
        gc_freeze=False,
        **settings_overrides,
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Server(app, client, clock, "postgres" if "postgres" in database_url else "sqlite")
