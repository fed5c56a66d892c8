"""Room: obs (stands alone; starts one thread). The stdlib ``logging`` handler that writes to a store.

``emit`` never blocks and never raises: it formats the message, takes the record's extra
attributes and the context fields (:mod:`.context`) and appends them to a bounded queue
(``queue_size`` records; the bound is checked without a lock, so with several threads logging at
once it may be passed by a few). One writer thread drains the queue in batches of up to
``batch_size`` (one store transaction each), when ``batch_size`` records wait or every
``flush_interval`` seconds. Only when the queue is full is a record dropped; drops are counted
(:attr:`ObsHandler.dropped`, ``obs_log_records_dropped_total``) and reported by one WARNING record
in the store per batch that follows them. ``flush()`` waits until everything logged before it is
stored; ``close()`` (also run by ``logging.shutdown()`` at exit) flushes and stops the thread.

Extra attributes: ``logger.info("msg", extra={"obs_attrs": {...}})`` (what the helpers of
:mod:`.helpers` use, and safe for any key) or plain ``extra={"key": value}``. Values that are not
JSON-safe are stored as their ``str()``; exceptions (``exc_info``) as ``attrs["exception"]``.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from .clock import Clock, SystemClock
from .context import _FIELDS
from .levels import STDLIB_LEVELS, Level, level_from_number
from .metrics import Counter, MetricRegistry
from .records import (
    EMPTY_ATTRS,
    MAX_LOGGER_CHARS,
    MAX_MESSAGE_CHARS,
    JsonValue,
    LogRecord,
    cap_message,
    json_safe_attrs,
)
from .store import ObsStore

#: the key of ``extra`` holding a dict of attributes (any keys, no clash with LogRecord's own)
ATTRS_KEY = "obs_attrs"
#: the longest formatted exception kept
MAX_EXCEPTION_CHARS = 16_384

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_N_STANDARD = len(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_LEVELS = STDLIB_LEVELS
_new_record = tuple.__new__

_fields = _FIELDS.get

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_Item = tuple[float, int, str, str, dict[str, Any] | None, Mapping[str, JsonValue], Any, Any]


class ObsHandler(logging.Handler):
    """Log records to ``store`` through a bounded queue and one writer thread."""

    def __init__(
        self,
        store: ObsStore,
        *,
        level: int = logging.NOTSET,
        queue_size: int = 100_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.2,
        registry: MetricRegistry | None = None,
        clock: Clock | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValueError("queue_size, batch_size and flush_interval are positive")
        super().__init__(level)
        self.store = store
        self.clock = clock or SystemClock()
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._queue: deque[_Item | threading.Event] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._drop_lock = threading.Lock()
        #: records refused because the queue was full
        self.dropped = 0
        self._dropped_reported = 0
        #: records handed to the store
        self.written = 0
        #: batches the store failed to write (their records are lost, and counted here)
        self.write_errors = 0
        self.lost = 0
        self._written_total: Counter | None = None
        self._dropped_total: Counter | None = None
        self._lost_total: Counter | None = None
        if registry is not None:
            self._written_total = registry.counter(
                "obs_log_records_written_total", "Log records handed to the obs store"
            )
            self._dropped_total = registry.counter(
                "obs_log_records_dropped_total", "Log records dropped because the queue was full"
            )
            self._lost_total = registry.counter(
                "obs_log_records_lost_total", "Log records the obs store failed to write"
            )
        self._thread = threading.Thread(target=self._run, name="obs-log-writer", daemon=True)
        self._thread.start()

    # -- the caller's side ------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> logging.LogRecord | bool:  # type: ignore[override]
        # Handler.handle takes the handler's lock around emit; emit needs none (deque.append
        # is atomic), so callers in many threads do not queue behind each other.
        result = self.filter(record)
        if isinstance(result, logging.LogRecord):
            record = result
        if result:
            self.emit(record)
        return result

    def emit(self, record: logging.LogRecord) -> None:
        try:
            queue = self._queue
            if len(queue) >= self.queue_size or self._stopping:
                with self._drop_lock:
                    self.dropped += 1
                return
            attrs = record.__dict__
            extras = None
            if len(attrs) > _N_STANDARD:  # cheaper than a set difference for every record
                keys = attrs.keys() - _STANDARD
                if keys:
                    extras = {k: attrs[k] for k in keys}
            queue.append(
                (
                    record.created,
                    record.levelno,
                    record.name,
                    record.getMessage(),
                    extras,
                    _fields(),
                    record.exc_info,
                    record.stack_info,
                )
            )
            if len(queue) >= self.batch_size and not self._wake.is_set():
                self._wake.set()
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float | None = 10.0) -> bool:  # type: ignore[override]
        """Wait until every record emitted before this call is stored (or ``timeout`` passed)."""
        if not self._thread.is_alive():
            return not self._queue
        marker = threading.Event()
        self._queue.append(marker)
        self._wake.set()
        return marker.wait(timeout)

    def close(self) -> None:
        """Flush, stop the writer thread. The store stays open (it is the caller's)."""
        if not self._stopping:
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout=30.0)
        super().close()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
            if self._stopping:
                self._drain()
                return

    def _drain(self) -> None:
        queue = self._queue
        convert = self._convert
        while queue:
            records: list[LogRecord] = []
            markers: list[threading.Event] = []
            popleft = queue.popleft
            # only this thread takes items, so the first min(len, batch) are there to take
            for _ in range(min(len(queue), self.batch_size)):
                item = popleft()
                if item.__class__ is threading.Event:
                    markers.append(item)
                    break  # write what came before the marker, then release its waiter
                records.append(convert(item))  # type: ignore[arg-type]
            if self.dropped != self._dropped_reported:
                records.append(self._drop_report())
            self._write(records)
            for marker in markers:
                marker.set()

    def _write(self, records: list[LogRecord]) -> None:
        if not records:
            return
        try:
            self.store.append_logs(records)
        except Exception as exc:
            self.write_errors += 1
            self.lost += len(records)
            if self._lost_total is not None:
                self._lost_total.inc(len(records))
            if self.write_errors == 1 or self.write_errors % 1000 == 0:
                print(
                    f"beamwarden.obs: the store failed to write {len(records)} log records "
                    f"({self.write_errors} failed batches so far): {exc!r}",
                    file=sys.stderr,
                )
            return
        self.written += len(records)
        if self._written_total is not None:
            self._written_total.inc(len(records))

    def _drop_report(self) -> LogRecord:
        with self._drop_lock:
            total = self.dropped
        new = total - self._dropped_reported
        self._dropped_reported = total
        if self._dropped_total is not None:
            self._dropped_total.inc(new)
        return LogRecord(
            self.clock.now(),
            Level.WARNING,
            f"obs: {new} log records dropped: the queue was full ({self.queue_size} records)",
            "beamwarden.obs",
            {"dropped": new, "dropped_total": total, "queue_size": self.queue_size},
        )

    def _convert(self, item: _Item) -> LogRecord:
        created, levelno, name, message, extras, fields, exc_info, stack_info = item
        level = _LEVELS.get(levelno) or level_from_number(levelno)
        if (
            extras is None
            and exc_info is None
            and stack_info is None
            and len(message) <= MAX_MESSAGE_CHARS
            and len(name) <= MAX_LOGGER_CHARS
        ):
            # the common case; context fields were checked when bound and are never mutated
            return _new_record(LogRecord, (created, level, message, name, fields, 0))
        attrs: dict[str, JsonValue] = dict(fields) if fields else {}
        if extras:
            own = extras.pop(ATTRS_KEY, None)
            if extras:
                attrs.update(json_safe_attrs(extras, coerce=True))
            if isinstance(own, Mapping):
                attrs.update(json_safe_attrs(own, coerce=True))
        if exc_info:
            attrs["exception"] = _format_exception(exc_info)
        if stack_info:
            attrs["stack"] = str(stack_info)[-MAX_EXCEPTION_CHARS:]
        message = cap_message(message, attrs)
        return LogRecord(created, level, message, name[:MAX_LOGGER_CHARS], attrs or EMPTY_ATTRS)


def _format_exception(exc_info: object) -> str:
    try:
        if isinstance(exc_info, tuple) and len(exc_info) == 3:
            text = "".join(traceback.format_exception(*exc_info))
        else:
            text = repr(exc_info)
    except Exception as exc:  # a broken __str__ must not lose the record
        text = f"<exception not formattable: {exc!r}>"
    return text[-MAX_EXCEPTION_CHARS:]
