"""Room: server/store (adapter). Driver errors mapped to the server's errors, at the boundary.

Imports ``beamwarden.server.errors`` and the drivers. A database that cannot be reached, is locked
past the timeout, read-only, out of disk, or drops the connection becomes
:class:`~beamwarden.server.errors.StoreUnavailable` (the API answers 503 with ``Retry-After``); so
does any operation that outlives its timeout. Anything else is a bug and propagates unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import exc as sa_exc

from beamwarden.server.errors import ServerError, StoreUnavailable

#: SQLite messages that mean "the file cannot be used now" rather than "the SQL is wrong".
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "readonly database",
    "unable to open database file",
    "disk i/o error",
    "database or disk is full",
    "interrupted",
    "no such table",
)

#: asyncpg errors that mean the server or the connection is not usable (not a bad statement).
_ASYNCPG_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08, incl. CannotConnectNow, ConnectionFailure
    asyncpg.InterfaceError,  # connection closed / in a bad state
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin shutdown, crash, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: disk full, too many connections
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a standby, or default_transaction_read_only
    asyncpg.exceptions.UndefinedTableError,  # not migrated yet
)


def unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The :class:`StoreUnavailable` that ``exc`` means, or ``None`` if it is not about availability."""
    if isinstance(exc, StoreUnavailable):
        return exc
    if isinstance(exc, TimeoutError | sa_exc.TimeoutError):
        return StoreUnavailable("the database did not answer in time")
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        ):
            return StoreUnavailable(f"the database is unavailable: {_short(exc.orig or exc)}")
        if exc.orig is not None:
            return unavailable(exc.orig) if exc.orig is not exc else None
        return None
    if isinstance(exc, _ASYNCPG_UNAVAILABLE):
        return StoreUnavailable(f"the database is unavailable: {_short(exc)}")
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        text = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) or any(m in text for m in _SQLITE_UNAVAILABLE):
            return StoreUnavailable(f"the database is unavailable: {_short(exc)}")
        return None
    if isinstance(exc, ConnectionError | OSError):
        return StoreUnavailable(f"the database is unreachable: {_short(exc)}")
    cause = exc.__cause__
    if cause is not None and cause is not exc:  # e.g. SQLAlchemy's adapted asyncpg errors
        return unavailable(cause)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:200]


def is_unique_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is a unique-constraint violation (a create whose key exists)."""
    if isinstance(exc, sa_exc.IntegrityError):
        return True
    return isinstance(exc, asyncpg.UniqueViolationError | sqlite3.IntegrityError)


@asynccontextmanager
async def guarded(limit_s: float) -> AsyncIterator[None]:
    """Bound the block by ``limit_s`` seconds and map driver failures (and the timeout) to
    :class:`StoreUnavailable`; the server's own errors and bugs pass unchanged. Every SQL adapter
    of the store runs its statements inside one."""
    try:
        async with asyncio.timeout(limit_s):
            yield
    except ServerError:
        raise
    except Exception as exc:
        mapped = unavailable(exc)
        if mapped is None:
            raise
        raise mapped from exc
