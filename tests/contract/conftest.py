"""Contract suite fixtures: one ``store`` per adapter (SQLite file, throwaway PostgreSQL database),
migrated with :func:`beamwarden.server.store.upgrade` like the app does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beamwarden.server.store import SqlStore, StoreConfig, open_store, upgrade
from tests.fixtures.databases import sqlite_url, throwaway_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        await asyncio.to_thread(upgrade, url)
        yield url
        return
    async with throwaway_postgres() as url:
        await asyncio.to_thread(upgrade, url)
        yield url


@pytest.fixture
def store_config(store_url: str) -> StoreConfig:
    return StoreConfig(store_url, pool_size=2, connect_timeout=5.0, query_timeout=10.0)


@pytest.fixture
async def store(store_config: StoreConfig) -> AsyncIterator[SqlStore]:
    opened = await open_store(store_config)
    try:
        yield opened
    finally:
        await opened.close()
