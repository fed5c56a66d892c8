"""Room: obs (stands alone; one thread or one asyncio task). The small runtime behind a store.

:meth:`ObsRuntime.tick` does what is due at time ``now``: every ``snapshot_interval`` seconds it
writes the metric series changed since the last snapshot to the store (their history for
``/metrics?since=``, and the store's last-value table), every ``retention_interval`` seconds it
applies the retention policy. :meth:`start` runs ticks in a daemon thread, :meth:`run` in an
asyncio task; both write a last snapshot when stopped. Tests call ``tick(now)`` with their own
times and never wait.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from .clock import Clock, SystemClock
from .metrics import MetricRegistry
from .retention import RetentionPolicy, RetentionReport, apply_retention
from .store import ObsStore

_log = logging.getLogger("beamwarden.obs")


class ObsRuntime:
    def __init__(
        self,
        store: ObsStore,
        *,
        registry: MetricRegistry | None = None,
        retention: RetentionPolicy | None = None,
        clock: Clock | None = None,
        snapshot_interval: float = 10.0,
        retention_interval: float = 60.0,
    ) -> None:
        if snapshot_interval <= 0 or retention_interval <= 0:
            raise ValueError("intervals are positive")
        self.store = store
        self.registry = registry
        self.retention = retention
        self.clock = clock or SystemClock()
        self.snapshot_interval = snapshot_interval
        self.retention_interval = retention_interval
        self._next_snapshot: float | None = None
        self._next_retention: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self.last_retention: RetentionReport | None = None
        self.failures = 0
        self._removed = (
            registry.counter(
                "obs_retention_removed_total", "Items removed by retention", labels=("what",)
            )
            if registry is not None
            else None
        )

    def snapshot(self) -> int:
        """Write the changed series now; returns how many samples were written."""
        if self.registry is None:
            return 0
        samples = self.registry.changed_samples()
        if samples:
            self.store.append_samples(samples)
        return len(samples)

    def tick(self, now: float | None = None) -> None:
        """Do what is due at ``now`` (the clock's time when not given). Never raises: a failure
        is logged and counted, and tried again at the next due time."""
        now = self.clock.now() if now is None else now
        with self._tick_lock:
            if self._next_snapshot is None or now >= self._next_snapshot:
                self._next_snapshot = now + self.snapshot_interval
                self._guard("snapshot", self.snapshot)
            if self.retention is not None and (
                self._next_retention is None or now >= self._next_retention
            ):
                self._next_retention = now + self.retention_interval
                self._guard("retention", lambda: self._apply_retention(now))

    def _apply_retention(self, now: float) -> None:
        assert self.retention is not None
        report = apply_retention(self.store, self.retention, now)
        self.last_retention = report
        if self._removed is not None:
            self._removed.labels(what="logs").inc(report.logs_removed)
            self._removed.labels(what="samples").inc(report.samples_removed)

    def _guard(self, what: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:
            self.failures += 1
            _log.exception("obs %s failed", what)

    # -- as a thread ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="obs-runtime", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        period = min(self.snapshot_interval, self.retention_interval, 1.0)
        while not self._stop.wait(period):
            self.tick()

    def stop(self) -> None:
        """Stop the thread (if any) and write a last snapshot."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30.0)
            self._thread = None
        self._guard("snapshot", self.snapshot)

    # -- as an asyncio task -----------------------------------------------------------------

    async def run(self) -> None:
        """Tick until cancelled (ticks run in a worker thread: stores may block)."""
        period = min(self.snapshot_interval, self.retention_interval, 1.0)
        try:
            while True:
                await asyncio.to_thread(self.tick)
                await asyncio.sleep(period)
        finally:
            await asyncio.to_thread(self._guard, "snapshot", self.snapshot)
