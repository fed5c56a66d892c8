"""Room: server/store (adapter). The Alembic environment of the store's migrations.

The URL comes from ``config.attributes["url"]`` (set by :func:`beamwarden.server.store.upgrade`
and :func:`~beamwarden.server.store.check`), else the ``sqlalchemy.url`` option, else the
environment variable ``BEAMWARDEN_DATABASE_URL``, else ``sqlite:///./data/beamwarden.db``.
Migrations run on the async drivers through ``asyncio.run`` in the calling thread, so the
functions above must be called from a thread without a running event loop (for example through
``await asyncio.to_thread(upgrade, url)``).
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Identity
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from beamwarden.server.store.config import DEFAULT_URL, ensure_sqlite_dir, is_sqlite, normalise_url
from beamwarden.server.store.partitions import is_partition
from beamwarden.server.store.schema import metadata

config = context.config
if config.config_file_name is not None and config.get_section("loggers") is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        url = os.environ.get("BEAMWARDEN_DATABASE_URL") or DEFAULT_URL
    return normalise_url(str(url))


def _compare_server_default(
    migration: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_default: str | None,
    metadata_default: object,
    rendered_metadata_default: str | None,
) -> bool | None:
    """SQLite only (Alembic 1.x cannot hand a reflected PostgreSQL identity to such a function).
    SQLite has no identity columns: SQLAlchemy leaves ``Identity()`` out of its DDL and the store's
    writer gives ``readings.id`` itself, so there is no difference to report. Anything else:
    Alembic's own comparison (``None``)."""
    if isinstance(metadata_default, Identity):
        return False
    return None


def _include_for(dialect: str) -> Any:
    """Leave out of the comparison what the schema declares for other databases only
    (``info={"dialects": (...)}``: SQLite's covering index of readings), and the partitions of
    PostgreSQL's readings."""

    def include(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        if type_ == "table" and reflected and name is not None and is_partition(name):
            return False  # readings' partitions: made by the server, not by migrations
        dialects = getattr(obj, "info", {}).get("dialects")
        return dialects is None or dialect in dialects

    return include


def _configure(**kwargs: object) -> None:
    sqlite = is_sqlite(_url())
    context.configure(
        target_metadata=metadata,
        include_object=_include_for("sqlite" if sqlite else "postgresql"),
        render_as_batch=sqlite,
        compare_type=True,
        compare_server_default=_compare_server_default if sqlite else True,
        **kwargs,  # type: ignore[arg-type]
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = _url()
    ensure_sqlite_dir(url)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
