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
``StoreUnavailable``).
"""

from .config import DEFAULT_URL, StoreConfig, normalise_url
from .migrate import check, upgrade
from .sql_store import SqlStore, open_store

__all__ = [
    "DEFAULT_URL",
    "SqlStore",
    "StoreConfig",
    "check",
    "normalise_url",
    "open_store",
    "upgrade",
]
