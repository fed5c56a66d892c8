"""Room: obs (stands alone; one daemon thread per exporter, HTTP through httpx). What every
exporter shares: read the store after the remembered mark, batch, send, move the mark.

Batching: a stream is sent as soon as ``batch_size`` items wait, or once items have waited
``max_delay`` seconds (by the injected clock), whichever comes first; a backlog is sent batch
after batch. A batch the receiver accepted moves the mark (:mod:`.cursors`); a batch it refused
for good (a final 4xx/5xx) is dropped — counted in ``obs_export_dropped_total`` and logged — so
one poisonous record cannot stop the exporter; a batch still failing at the deadline stays
where it is and is tried again at the next poll (the store is the buffer: nothing is lost while
retention keeps it). Failures and refusals are logged once per streak, and recovery once (the
exporter's own log lines are exported too: one per failed batch would feed itself).

:meth:`BatchExporter.close` cuts a waiting backoff short, then sends what is left in one last
pass bounded by ``timeout``, without waiting between attempts.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import httpx

from beamwarden.obs.clock import Clock, SystemClock
from beamwarden.obs.metrics import Counter, MetricRegistry
from beamwarden.obs.query import LogQuery, SampleQuery
from beamwarden.obs.records import LogRecord, MetricSample
from beamwarden.obs.store import ObsStore

from .cursors import CursorStore, MemoryCursors
from .retry import RetryPolicy
from .sender import HttpSender, Outcome, Payload, SendResult

_log = logging.getLogger("beamwarden.obs.export")
_Item = TypeVar("_Item", LogRecord, MetricSample)

LOGS = "logs"
SAMPLES = "samples"


def unix_nanos(ts: float) -> int:
    """Epoch seconds as whole nanoseconds (stored times are good to the microsecond)."""
    return round(ts * 1_000_000) * 1_000


class Exporter(Protocol):
    """What :class:`~beamwarden.obs.Observability` drives."""

    name: str

    def bind(
        self,
        store: ObsStore,
        *,
        cursors: CursorStore,
        registry: MetricRegistry | None = None,
        clock: Clock | None = None,
    ) -> None: ...

    def start(self) -> None: ...

    def run_once(self, *, force: bool = False) -> int: ...

    def close(self, timeout: float = 5.0) -> None: ...


class BatchExporter:
    """Subclasses say which ``streams`` they send and how a batch is encoded
    (``encode_logs``/``encode_samples``), and may override :meth:`run_once` (the Pushgateway)."""

    streams: frozenset[str] = frozenset({LOGS, SAMPLES})

    def __init__(
        self,
        *,
        name: str,
        batch_size: int = 1_000,
        max_delay: float = 5.0,
        poll_interval: float = 1.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        compression: str | None = None,
        client: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not name or "/" in name:
            raise ValueError("an exporter name is non-empty and has no '/'")
        if batch_size < 1 or max_delay < 0 or poll_interval <= 0:
            raise ValueError("batch_size >= 1, max_delay >= 0, poll_interval > 0")
        self.name = name
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.retry = retry or RetryPolicy()
        self._own_client = client is None
        self.client = client or httpx.Client(http2=False, follow_redirects=False)
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self.monotonic = monotonic
        self._rng = rng
        self._headers = dict(headers or {})
        self._compression = compression
        self.clock: Clock = SystemClock()
        self.store: ObsStore | None = None
        self.cursors: CursorStore = MemoryCursors()
        self.sender = self._sender()
        self._pending_since: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()
        self._failing = False
        self._refusing = False
        self._closed = False
        self.sent: dict[str, int] = {LOGS: 0, SAMPLES: 0}
        self.dropped: dict[str, int] = {LOGS: 0, SAMPLES: 0}
        self.failures = 0
        self._sent_total: Counter | None = None
        self._dropped_total: Counter | None = None
        self._failed_total: Counter | None = None

    def _sender(self) -> HttpSender:
        return HttpSender(
            self.client,
            self.retry,
            wait=self._wait_or_stop,
            monotonic=self.monotonic,
            clock=self.clock,
            rng=self._rng,
            compression=self._compression,
            headers=self._headers,
        )

    def _wait_or_stop(self, seconds: float) -> bool:
        if self._stop.is_set():
            return True
        return self._wait(seconds) or self._stop.is_set()

    def bind(
        self,
        store: ObsStore,
        *,
        cursors: CursorStore,
        registry: MetricRegistry | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Attach to the store to export from, the marks, and (optionally) the registry that
        counts what the exporter does."""
        self.store = store
        self.cursors = cursors
        if clock is not None:
            self.clock = clock
        self.sender = self._sender()
        if registry is not None:
            self.registry_bound(registry)

    def registry_bound(self, registry: MetricRegistry) -> None:
        self._sent_total = registry.counter(
            "obs_export_items_total", "Items a receiver accepted", labels=("exporter", "stream")
        )
        self._dropped_total = registry.counter(
            "obs_export_dropped_total",
            "Items dropped because the receiver refused them for good",
            labels=("exporter", "stream"),
        )
        self._failed_total = registry.counter(
            "obs_export_failures_total",
            "Batches still failing at the deadline (kept, tried again)",
            labels=("exporter",),
        )

    # -- encoding (subclasses) ---------------------------------------------------------------

    def encode_logs(self, records: Sequence[LogRecord]) -> Payload:
        raise NotImplementedError

    def encode_samples(self, samples: Sequence[MetricSample]) -> Payload:
        raise NotImplementedError

    # -- one pass --------------------------------------------------------------------------

    def run_once(self, *, force: bool = False, deadline: float | None = None) -> int:
        """Send what is due now (everything waiting, with ``force``); returns the number of
        items the receivers accepted. ``deadline`` (``monotonic()`` time) bounds the pass."""
        if self.store is None:
            raise RuntimeError(f"exporter {self.name} is not bound to a store")
        store = self.store
        sent = 0
        with self._pass_lock:
            sent += self._drain(LOGS, self.encode_logs, store.read_logs, LogQuery, force, deadline)
            sent += self._drain(
                SAMPLES, self.encode_samples, store.read_samples, SampleQuery, force, deadline
            )
        return sent

    def _drain(
        self,
        stream: str,
        encode: Callable[[Sequence[_Item]], Payload],
        read: Callable[..., list[_Item]],
        query: Callable[..., object],
        force: bool,
        deadline: float | None,
    ) -> int:
        if stream not in self.streams:
            return 0
        key = f"{self.name}/{stream}"
        sent = 0
        while not (self._stop.is_set() and not force):
            if deadline is not None and self.monotonic() >= deadline:
                break
            after = self.cursors.get(key)
            items = read(query(after_id=after, limit=self.batch_size))
            if not items:
                self._pending_since.pop(stream, None)
                break
            if len(items) < self.batch_size and not force and not self._aged(stream):
                break
            payload = encode(items)
            result = self.sender.send(payload, deadline)
            if result.outcome is Outcome.GAVE_UP:
                self._failed(result)
                break
            last = items[-1].id
            self.cursors.put(key, last, self.clock.now())
            self._pending_since.pop(stream, None)
            if result.outcome is Outcome.SENT:
                self._recovered()
                sent += len(items)
                self.sent[stream] += len(items)
                if self._sent_total is not None:
                    self._sent_total.labels(exporter=self.name, stream=stream).inc(len(items))
            else:
                self._refused(stream, items, result)
            if len(items) < self.batch_size:
                break
        return sent

    def _aged(self, stream: str) -> bool:
        now = self.clock.now()
        since = self._pending_since.setdefault(stream, now)
        return now - since >= self.max_delay

    def _failed(self, result: SendResult) -> None:
        self.failures += 1
        if self._failed_total is not None:
            self._failed_total.labels(exporter=self.name).inc()
        if not self._failing:
            self._failing = True
            _log.warning(
                "obs exporter %s: receiver unavailable after %d attempts (%s %s); kept, will retry",
                self.name,
                result.attempts,
                result.status,
                result.detail[:200],
            )

    def _recovered(self) -> None:
        if self._refusing:
            self._refusing = False
            _log.info("obs exporter %s: receiver accepts batches again", self.name)
        if self._failing:
            self._failing = False
            _log.info("obs exporter %s: receiver reachable again", self.name)

    def _refused(self, stream: str, items: Sequence[_Item], result: SendResult) -> None:
        self.dropped[stream] += len(items)
        if self._dropped_total is not None:
            self._dropped_total.labels(exporter=self.name, stream=stream).inc(len(items))
        if (
            self._refusing
        ):  # said once per streak: this log line would be exported (and refused) too
            return
        self._refusing = True
        _log.warning(
            "obs exporter %s: receiver refused %d %s (ids %d..%d) with %s, dropped: %s",
            self.name,
            len(items),
            stream,
            items[0].id,
            items[-1].id,
            result.status,
            result.detail[:200],
        )

    # -- as a thread -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self._closed:
            return
        self._thread = threading.Thread(
            target=self._loop, name=f"obs-export-{self.name}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.run_once()
            except Exception:  # a store or encoder bug must not kill the thread silently
                self.failures += 1
                _log.exception("obs exporter %s failed", self.name)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread, then send what is left (one attempt per batch) within ``timeout``."""
        if self._closed:
            return
        self._closed = True
        end = self.monotonic() + timeout
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout, self.retry.request_timeout) + 1.0)
            self._thread = None
        if self.store is not None:
            try:
                self.run_once(force=True, deadline=end)
            except Exception:
                _log.exception("obs exporter %s: last pass failed", self.name)
        if self._own_client:
            self.client.close()
