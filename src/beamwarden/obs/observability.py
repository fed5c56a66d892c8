"""Room: obs (stands alone). :class:`Observability`: a store, a metric registry, the logging
handler, the runtime and the endpoints, wired together for an app.

::

    obs = Observability.sqlite("data/obs.db")
    obs.install()                        # stdlib logging → the store
    obs.start()                          # snapshots of metrics, retention (a daemon thread)
    app.mount("/obs", obs.asgi)          # or obs.wsgi, or the adapters
    ...
    obs.close()                          # flush the logs, last snapshot, close the store
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

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

    def start(self) -> None:
        self.runtime.start()

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
