"""Room: obs (stands alone). :class:`Observability`: a store, a metric registry, the logging
handler, the runtime and the endpoints, wired together for an app.

::

    obs = Observability.sqlite("data/obs.db")
    obs.install()                        # stdlib logging → the store
    obs.start()                          # snapshots of metrics, retention (a daemon thread)
    app.mount("/obs", obs.asgi)          # or obs.wsgi, or the adapters
    obs.add_exporter(OtlpExporter("http://collector:4318"))   # optional: beamwarden.obs.exporters
    ...
    obs.close()                          # flush the logs, last snapshot, last export, close the store

Exporters remember what they sent next to the store: in a table of the SQLite file for
``Observability.sqlite``, in memory for the memory and ring stores (whose ids restart anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .asgi import ObsAsgiApp
from .clock import Clock, SystemClock
from .endpoints import ObsEndpoints
from .handler import ObsHandler
from .memory_store import MemoryStore, RingBufferStore
from .metrics import MetricRegistry
from .records import JsonValue
from .retention import RetentionPolicy
from .runtime import ObsRuntime
from .sqlite_store import SqliteStore
from .store import ObsStore
from .wsgi import ObsWsgiApp

if TYPE_CHECKING:
    from .exporters import CursorStore, Exporter


class Observability:
    def __init__(
        self,
        store: ObsStore,
        *,
        registry: MetricRegistry | None = None,
        clock: Clock | None = None,
        retention: RetentionPolicy | None = None,
        queue_size: int = 100_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.2,
        snapshot_interval: float = 10.0,
        retention_interval: float = 60.0,
        exporters: Sequence[Exporter] = (),
        export_close_timeout: float = 5.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.store = store
        self.registry = registry or MetricRegistry(clock=self.clock)
        self.handler = ObsHandler(
            store,
            queue_size=queue_size,
            batch_size=batch_size,
            flush_interval=flush_interval,
            registry=self.registry,
            clock=self.clock,
        )
        self.runtime = ObsRuntime(
            store,
            registry=self.registry,
            retention=retention if retention is not None else RetentionPolicy(),
            clock=self.clock,
            snapshot_interval=snapshot_interval,
            retention_interval=retention_interval,
        )
        self.endpoints = ObsEndpoints(
            store, registry=self.registry, clock=self.clock, health=self._health
        )
        self.asgi = ObsAsgiApp(self.endpoints)
        self.wsgi = ObsWsgiApp(self.endpoints)
        self._installed: list[logging.Logger] = []
        self._closed = False
        self._started = False
        self.exporters: list[Exporter] = []
        self.export_close_timeout = export_close_timeout
        self._cursors: CursorStore | None = None
        for exporter in exporters:
            self.add_exporter(exporter)

    @classmethod
    def sqlite(cls, path: str | Path, **options: Any) -> Observability:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(SqliteStore(path), **options)

    @classmethod
    def memory(cls, **options: Any) -> Observability:
        return cls(MemoryStore(), **options)

    @classmethod
    def ring(
        cls, max_logs: int = 100_000, max_log_bytes: int = 64 << 20, **options: Any
    ) -> Observability:
        return cls(RingBufferStore(max_logs=max_logs, max_log_bytes=max_log_bytes), **options)

    def install(
        self, logger: logging.Logger | str | None = None, level: int | str = "INFO"
    ) -> None:
        """Send ``logger``'s records (the root logger's by default) to the store."""
        target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        if isinstance(level, str):
            level = level.upper()
        target.setLevel(level)
        if self.handler not in target.handlers:
            target.addHandler(self.handler)
            self._installed.append(target)

    def add_exporter(self, exporter: Exporter) -> Exporter:
        """Ship the store's records and samples with ``exporter`` (started with :meth:`start`,
        or at once when already started; closed, after a last pass, by :meth:`close`)."""
        if self._closed:
            raise RuntimeError("this Observability is closed")
        if any(e.name == exporter.name for e in self.exporters):
            raise ValueError(f"an exporter named {exporter.name!r} is already added")
        exporter.bind(self.store, cursors=self.cursors(), registry=self.registry, clock=self.clock)
        self.exporters.append(exporter)
        if self._started:
            exporter.start()
        return exporter

    def cursors(self) -> CursorStore:
        """Where the exporters' marks live: the SQLite file's ``obs_export_cursors`` table, or
        memory for the other stores."""
        if self._cursors is None:
            from .exporters import MemoryCursors, SqliteCursors

            if isinstance(self.store, SqliteStore) and not self.store.readonly:
                self._cursors = SqliteCursors(self.store.path)
            else:
                self._cursors = MemoryCursors()
        return self._cursors

    def start(self) -> None:
        self._started = True
        self.runtime.start()
        for exporter in self.exporters:
            exporter.start()

    def flush(self, timeout: float = 10.0) -> bool:
        return self.handler.flush(timeout)

    def _health(self) -> dict[str, JsonValue]:
        return {
            "logs": {
                "queued": len(self.handler._queue),
                "queue_size": self.handler.queue_size,
                "written": self.handler.written,
                "dropped": self.handler.dropped,
                "lost": self.handler.lost,
            }
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for target in self._installed:
            target.removeHandler(self.handler)
        self._installed.clear()
        self.handler.close()
        self.runtime.stop()
        for exporter in self.exporters:
            exporter.close(self.export_close_timeout)
        if self._cursors is not None:
            self._cursors.close()
        self.store.close()

    def __enter__(self) -> Observability:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
