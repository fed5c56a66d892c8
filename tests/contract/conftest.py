"""Contract suite fixtures: one ``store`` per adapter (SQLite file, throwaway PostgreSQL database),
migrated with :func:`beamwarden.server.store.upgrade` like the app does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beamwarden.server.store import SqlStore, StoreConfig, open_store, upgrade
from tests.fixtures.databases import sqlite_url, throwaway_postgres


@pytest.fixture(
    params=["sqlite", "sqlite-thread", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every implementation of the store: SQLite with its readings writer in a child process (the
    default) or in a thread, and PostgreSQL."""
    return str(request.param)


@pytest.fixture
async def store_url(store_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database of each kind."""
    if store_kind.startswith("sqlite"):
        url = sqlite_url(tmp_path)
        await asyncio.to_thread(upgrade, url)
        yield url
        return
    async with throwaway_postgres() as url:
        await asyncio.to_thread(upgrade, url)
        yield url


@pytest.fixture
def store_config(store_url: str, store_kind: str) -> StoreConfig:
    writer = "thread" if store_kind == "sqlite-thread" else "process"
    return StoreConfig(
        store_url, pool_size=2, connect_timeout=5.0, query_timeout=10.0, sqlite_writer=writer
    )


@pytest.fixture
async def store(store_config: StoreConfig) -> AsyncIterator[SqlStore]:
    opened = await open_store(store_config)
    try:
        yield opened
    finally:
        await opened.close()
