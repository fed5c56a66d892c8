"""Room: server/store (adapter). Store settings and database URL handling.

Imports only the standard library. ``normalise_url`` turns the URLs people write
(``postgresql://``, ``postgres://``, ``sqlite:///path``) into the async driver URLs the store uses
(``postgresql+asyncpg://``, ``sqlite+aiosqlite:///path``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: The database the app uses when none is configured: a SQLite file under ``./data``.
DEFAULT_URL = "sqlite:///./data/beamwarden.db"

_SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_SQLITE_WRITERS = ("process", "thread")


@dataclass
class StoreConfig:
    """How to reach the database and how long to wait for it.

    * ``url``: ``sqlite:///path`` or ``postgresql://user@host:port/db`` (async forms accepted).
    * ``pool_size``: connections kept open (PostgreSQL; SQLite readers).
    * ``connect_timeout``: seconds to open a connection or take one from the pool.
    * ``query_timeout``: seconds any one store operation (statements and commit) may take;
      on SQLite also how long a writer waits for the file's write lock.
    * ``opaque_id_window_s``: how long an opaque ``reading_id`` is remembered for deduplication.
    * ``sqlite_synchronous``: ``PRAGMA synchronous`` of SQLite; ``FULL`` (the default) makes every
      acknowledged commit survive a power cut. ``NORMAL`` is faster and may lose the last commits.
    * ``sqlite_cache_mib``: the page cache of SQLite's readings writer (``PRAGMA cache_size``). The
      tails of every active series' b-tree pages stay in it between commits (the default 2 MiB
      holds ~500 pages: fewer than the series of a fleet of 1000 sensors).
    * ``sqlite_checkpoint_pages``: ``PRAGMA wal_autocheckpoint`` of the readings writer: after a
      commit that leaves more pages than this in the WAL, the writer copies them into the database
      file. Bigger means fewer copies of the same hot pages (each series' last page is rewritten by
      every commit) and a bigger WAL; it bounds the WAL while no reader holds an old snapshot.
    * ``sqlite_wal_limit_mib``: ``PRAGMA journal_size_limit``: the WAL file is cut back to this
      size when it restarts, so a burst does not leave a huge file behind.
    * ``sqlite_mmap_mib``: ``PRAGMA mmap_size`` of the reading connections (reads straight from the
      OS page cache instead of a copy per connection); 0 turns it off.
    * ``sqlite_writer``: where SQLite's readings writer runs: ``process`` (a child process of its
      own, the default: it needs no share of the server's GIL) or ``thread`` (a thread of the
      server; no extra process). See :mod:`.sqlite_writer`.
    * ``postgres_jit``: PostgreSQL's ``jit`` for the store's connections, off by default: a series
      of a day (1440 buckets) is planned above ``jit_above_cost`` and then spends 15-60 ms
      compiling for a 30 ms query.
    """

    url: str
    pool_size: int = 5
    connect_timeout: float = 5.0
    query_timeout: float = 30.0
    opaque_id_window_s: float = 7 * 86400
    sqlite_synchronous: str = "FULL"
    sqlite_cache_mib: int = 64
    sqlite_checkpoint_pages: int = 10_000
    sqlite_wal_limit_mib: int = 64
    sqlite_mmap_mib: int = 256
    sqlite_writer: str = "process"
    postgres_jit: bool = False

    def __post_init__(self) -> None:
        if self.sqlite_synchronous.upper() not in _SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {', '.join(_SQLITE_SYNCHRONOUS)}")
        if self.sqlite_writer not in _SQLITE_WRITERS:
            raise ValueError(f"sqlite_writer must be one of {', '.join(_SQLITE_WRITERS)}")
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if self.connect_timeout <= 0 or self.query_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.sqlite_cache_mib < 1 or self.sqlite_checkpoint_pages < 1:
            raise ValueError("sqlite_cache_mib and sqlite_checkpoint_pages must be at least 1")
        if self.sqlite_wal_limit_mib < 0 or self.sqlite_mmap_mib < 0:
            raise ValueError("sqlite_wal_limit_mib and sqlite_mmap_mib must not be negative")


def _sqlite_common(config: StoreConfig) -> list[str]:
    return [
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={config.sqlite_synchronous.upper()}",
        "PRAGMA temp_store=MEMORY",
    ]


def sqlite_writer_pragmas(config: StoreConfig) -> list[str]:
    """The PRAGMAs of SQLite's readings writer connection (durability: ``sqlite_synchronous``)."""
    return [
        *_sqlite_common(config),
        f"PRAGMA cache_size={-config.sqlite_cache_mib * 1024}",  # negative: KiB
        f"PRAGMA wal_autocheckpoint={config.sqlite_checkpoint_pages}",
        f"PRAGMA journal_size_limit={config.sqlite_wal_limit_mib * 1024 * 1024}",
    ]


def sqlite_reader_pragmas(config: StoreConfig) -> list[str]:
    """The PRAGMAs of the store's other SQLite connections (reads, and the small writes of nodes,
    tokens, events and heartbeats)."""
    return [
        *_sqlite_common(config),
        f"PRAGMA mmap_size={config.sqlite_mmap_mib * 1024 * 1024}",
        f"PRAGMA journal_size_limit={config.sqlite_wal_limit_mib * 1024 * 1024}",
    ]


def normalise_url(url: str) -> str:
    """The async-driver form of a database URL; an async URL is returned unchanged.

    ``postgresql://…`` and ``postgres://…`` become ``postgresql+asyncpg://…``; ``sqlite:///path``
    becomes ``sqlite+aiosqlite:///path``. Any other scheme is refused with ``ValueError``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return "postgresql+asyncpg://" + rest
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite://" + rest
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")


def is_sqlite(url: str) -> bool:
    return normalise_url(url).startswith("sqlite+")


def sqlite_path(url: str) -> str:
    """The file path of a SQLite URL (``sqlite:///rel/path``, ``sqlite:////abs/path``).

    An in-memory database is refused: the store's writer thread and its readers must share a file.
    """
    rest = normalise_url(url).partition("://")[2]
    if not rest.startswith("/"):
        raise ValueError(f"a SQLite URL has three slashes before its path: {url!r}")
    path = rest[1:].partition("?")[0]
    if path in ("", ":memory:") or path.startswith("file::memory:"):
        raise ValueError("an in-memory SQLite database is not supported: give a file path")
    return path


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite database file if it is missing (no-op for PostgreSQL)."""
    if not is_sqlite(url):
        return
    parent = os.path.dirname(os.path.abspath(sqlite_path(url)))
    os.makedirs(parent, exist_ok=True)
