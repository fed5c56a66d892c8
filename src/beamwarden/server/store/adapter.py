"""Room: server/store (adapter). The base of the SQL adapters that sit on the store's engine.

Each adapter (alerts, devices, users, stream retention) runs its statements in ``_read()`` (a
connection) or ``_write()`` (a transaction), both bounded by the query timeout with driver
failures mapped to :class:`~beamwarden.server.errors.StoreUnavailable` (:func:`.failures.guarded`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .failures import guarded

__all__ = ["EngineAdapter"]


class EngineAdapter:
    def __init__(self, engine: AsyncEngine, query_timeout: float = 30.0) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._timeout = query_timeout

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with guarded(self._timeout), self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with guarded(self._timeout), self.engine.begin() as conn:
            yield conn
