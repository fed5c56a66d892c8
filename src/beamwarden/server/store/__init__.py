"""Room: server/store (adapter). SQLAlchemy Core schema, SQLite and PostgreSQL stores, migrations.

Imports only ``beamwarden.protocol``, ``beamwarden.server.records``, ``beamwarden.server.errors``
and third-party libraries (never services, the API or the app). The app wires it::

    await asyncio.to_thread(upgrade, url)          # migrate (Alembic, in a worker thread)
    store = await open_store(StoreConfig(url))     # satisfies services.ports.Store
    ...
    await store.close()

Modules: :mod:`.config` (settings, URLs), :mod:`.schema` (tables), :mod:`.migrate` and
``migrations/`` (Alembic), :mod:`.sql_store` (the store), :mod:`.ingest` (the readings hot path
shared by :mod:`.sqlite_writer` and :mod:`.postgres_writer`), :mod:`.failures` (driver errors →
``StoreUnavailable``), :mod:`.sqlite_writer_process` (SQLite's writer in a child process),
:mod:`.layout` (the readings row), :mod:`.partitions` (PostgreSQL's day partitions),
:mod:`.rollups` (1-minute and 1-hour aggregates and their marks), :mod:`.node_listing` (the
statements of a node listing).
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING
from typing import Any as _Any

from .config import DEFAULT_URL, StoreConfig, normalise_url

if TYPE_CHECKING:
    from .migrate import check, upgrade
    from .sql_store import SqlStore, open_store

#: imported on first use, so that a submodule (the SQLite writer's child process) can be
#: imported without SQLAlchemy and Alembic
_LAZY = {
    "check": ".migrate",
    "upgrade": ".migrate",
    "SqlStore": ".sql_store",
    "open_store": ".sql_store",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_importlib.import_module(module, __name__), name)


__all__ = [
    "DEFAULT_URL",
    "SqlStore",
    "StoreConfig",
    "check",
    "normalise_url",
    "open_store",
    "upgrade",
]
