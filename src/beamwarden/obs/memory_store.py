"""Room: obs (stands alone). In-memory stores: :class:`MemoryStore` and :class:`RingBufferStore`.

Log records are kept column-wise in chunks of :data:`CHUNK` records: ids and timestamps in
``array``\\ s, levels in a ``bytearray``, logger names as indexes into a table, and message and
encoded attributes as UTF-8 in one byte buffer per chunk. That is about 30 bytes a record plus its
text, instead of ~300 for a Python object with a dict, so a million records fit in well under
250 MB (``bench/bench_obs_memory.py``). Records are decoded only when read.

A chunk is skipped whole when its newest timestamp is older than ``since``, and found by bisection
for a cursor, so reads do not walk the whole history.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import deque
from collections.abc import Collection, Sequence

from . import _json
from .levels import Level
from .query import LogQuery, SampleQuery
from .records import EMPTY_ATTRS, HistogramValue, Labels, LogRecord, MetricSample
from .store import StoreStats, clean_json, clean_text

#: records per chunk
CHUNK = 4096
#: bytes a record costs besides its text, for the ring buffer's byte bound
RECORD_OVERHEAD = 32
#: bytes a sample costs besides its name and labels
SAMPLE_OVERHEAD = 64

_LEVELS = {int(level): level for level in Level}


class _Chunk:
    __slots__ = (
        "attr_ends",
        "data",
        "ids",
        "levels",
        "loggers",
        "max_ts",
        "min_ts",
        "msg_ends",
        "start",
        "ts",
    )

    def __init__(self) -> None:
        self.ids = array("q")
        self.ts = array("d")
        self.levels = bytearray()
        self.loggers = array("I")
        self.msg_ends = array("I")
        self.attr_ends = array("I")
        self.data = bytearray()
        self.start = 0
        self.max_ts = float("-inf")
        self.min_ts = float("inf")

    def __len__(self) -> int:
        return len(self.ids)

    def cost(self, i: int) -> int:
        begin = self.attr_ends[i - 1] if i else 0
        return self.attr_ends[i] - begin + RECORD_OVERHEAD

    def add(self, rid: int, ts: float, level: int, logger: int, msg: bytes, attrs: bytes) -> None:
        self.ids.append(rid)
        self.ts.append(ts)
        self.levels.append(level)
        self.loggers.append(logger)
        self.data += msg
        self.msg_ends.append(len(self.data))
        self.data += attrs
        self.attr_ends.append(len(self.data))
        if ts > self.max_ts:
            self.max_ts = ts
        if ts < self.min_ts:
            self.min_ts = ts

    def record(self, i: int, loggers: list[str]) -> LogRecord:
        begin = self.attr_ends[i - 1] if i else 0
        mid = self.msg_ends[i]
        end = self.attr_ends[i]
        attrs = _json.loads(bytes(self.data[mid:end])) if end > mid else EMPTY_ATTRS
        return LogRecord(
            self.ts[i],
            _LEVELS[self.levels[i]],
            self.data[begin:mid].decode("utf-8", "replace"),
            loggers[self.loggers[i]],
            attrs,
            self.ids[i],
        )

    def raw(self, i: int) -> tuple[int, float, int, int, bytes, bytes]:
        begin = self.attr_ends[i - 1] if i else 0
        mid = self.msg_ends[i]
        end = self.attr_ends[i]
        return (
            self.ids[i],
            self.ts[i],
            self.levels[i],
            self.loggers[i],
            bytes(self.data[begin:mid]),
            bytes(self.data[mid:end]),
        )


class MemoryStore:
    """Everything in this process's memory; gone when it exits. Bounded only by retention."""

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: deque[_Chunk] = deque()
        self._logger_names: list[str] = []
        self._logger_index: dict[str, int] = {}
        self._next_log_id = 1
        self._log_count = 0
        self._log_bytes = 0
        self._samples: list[MetricSample] = []
        self._samples_start = 0  # samples before this index were removed
        self._sample_bytes = 0
        self._latest: dict[tuple[str, Labels], MetricSample] = {}
        self._next_sample_id = 1
        self._evicted_logs = 0
        self._evicted_samples = 0
        self._rejected = 0
        self._closed = False

    # -- logs -------------------------------------------------------------------------------

    def _logger_id(self, name: str) -> int:
        index = self._logger_index.get(name)
        if index is None:
            index = len(self._logger_names)
            self._logger_names.append(name)
            self._logger_index[name] = index
        return index

    def append_logs(self, records: Sequence[LogRecord]) -> None:
        dumps = _json.dumps
        with self._lock:
            chunks = self._chunks
            chunk = chunks[-1] if chunks else None
            for rec in records:
                try:
                    msg = rec.message.encode()
                    attrs = dumps(rec.attrs) if rec.attrs else b""
                except (UnicodeEncodeError, TypeError, ValueError):
                    try:
                        msg = clean_text(str(rec.message)).encode()
                        attrs = dumps(clean_json(dict(rec.attrs))) if rec.attrs else b""
                    except (TypeError, ValueError):
                        self._rejected += 1
                        continue
                if chunk is None or len(chunk) >= CHUNK:
                    if chunk is not None:
                        chunk.data = bytearray(chunk.data)  # drop bytearray's spare capacity
                    chunk = _Chunk()
                    chunks.append(chunk)
                chunk.add(
                    self._next_log_id,
                    rec.ts,
                    int(rec.level),
                    self._logger_id(rec.logger),
                    msg,
                    attrs,
                )
                self._next_log_id += 1
                self._log_count += 1
                self._log_bytes += len(msg) + len(attrs) + RECORD_OVERHEAD
            self._after_append_logs()

    def _after_append_logs(self) -> None:
        """Hook for bounded subclasses (called with the lock held)."""

    def _evict_oldest_log(self) -> None:
        chunk = self._chunks[0]
        self._log_bytes -= chunk.cost(chunk.start)
        chunk.start += 1
        self._log_count -= 1
        if chunk.start >= len(chunk):
            self._chunks.popleft()

    def read_logs(self, query: LogQuery) -> list[LogRecord]:
        out: list[LogRecord] = []
        since = query.since
        min_level = int(query.min_level) if query.min_level is not None else 0
        with self._lock:
            chunks = list(self._chunks)
            names = self._logger_names
            lasts = [c.ids[-1] for c in chunks]
            index = bisect.bisect_right(lasts, query.after_id)
            for chunk in chunks[index:]:
                if since is not None and chunk.max_ts < since:
                    continue
                begin = max(chunk.start, bisect.bisect_right(chunk.ids, query.after_id))
                ts, levels = chunk.ts, chunk.levels
                for i in range(begin, len(chunk)):
                    if (since is None or ts[i] >= since) and levels[i] >= min_level:
                        out.append(chunk.record(i, names))
                        if len(out) >= query.limit:
                            return out
        return out

    def delete_logs(self, before: float, levels: Collection[Level] | None = None) -> int:
        wanted = None if levels is None else {int(level) for level in levels}
        removed = 0
        with self._lock:
            rebuilt: deque[_Chunk] = deque()
            for chunk in self._chunks:
                if chunk.min_ts >= before:
                    rebuilt.append(chunk)
                    continue
                kept = _Chunk()
                for i in range(chunk.start, len(chunk)):
                    if chunk.ts[i] < before and (wanted is None or chunk.levels[i] in wanted):
                        removed += 1
                        self._log_bytes -= chunk.cost(i)
                    else:
                        kept.add(*chunk.raw(i))
                if len(kept):
                    rebuilt.append(kept)
            self._chunks = rebuilt
            self._log_count -= removed
        return removed

    def trim_logs(self, keep: int) -> int:
        with self._lock:
            removed = 0
            while self._log_count > max(keep, 0):
                self._evict_oldest_log()
                removed += 1
            return removed

    # -- samples ----------------------------------------------------------------------------

    def append_samples(self, samples: Sequence[MetricSample]) -> None:
        with self._lock:
            for sample in samples:
                stored = sample._replace(id=self._next_sample_id)
                self._next_sample_id += 1
                self._samples.append(stored)
                self._sample_bytes += _sample_cost(stored)
                key = (stored.name, stored.labels)
                current = self._latest.get(key)
                if current is None or current.ts <= stored.ts:
                    self._latest[key] = stored
            self._after_append_samples()

    def _after_append_samples(self) -> None:
        """Hook for bounded subclasses (called with the lock held)."""

    def _sample_count(self) -> int:
        return len(self._samples) - self._samples_start

    def _evict_oldest_sample(self) -> None:
        self._sample_bytes -= _sample_cost(self._samples[self._samples_start])
        self._samples_start += 1
        if self._samples_start > 1024 and self._samples_start * 2 > len(self._samples):
            del self._samples[: self._samples_start]
            self._samples_start = 0

    def read_samples(self, query: SampleQuery) -> list[MetricSample]:
        out: list[MetricSample] = []
        with self._lock:
            samples = self._samples
            lo = bisect.bisect_right(_Ids(samples), query.after_id, lo=self._samples_start)
            for i in range(lo, len(samples)):
                sample = samples[i]
                if query.since is not None and sample.ts < query.since:
                    continue
                if query.name is not None and sample.name != query.name:
                    continue
                out.append(sample)
                if len(out) >= query.limit:
                    break
        return out

    def latest_samples(self) -> list[MetricSample]:
        with self._lock:
            return list(self._latest.values())

    def delete_samples(self, before: float) -> int:
        with self._lock:
            live = self._samples[self._samples_start :]
            kept = [s for s in live if s.ts >= before]
            removed = len(live) - len(kept)
            self._samples = kept
            self._samples_start = 0
            self._sample_bytes = sum(_sample_cost(s) for s in kept)
            return removed

    def trim_samples(self, keep: int) -> int:
        with self._lock:
            removed = 0
            while self._sample_count() > max(keep, 0):
                self._evict_oldest_sample()
                removed += 1
            return removed

    # -- the rest ---------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(
                kind=self.kind,
                logs=self._log_count,
                samples=self._sample_count(),
                series=len(self._latest),
                evicted_logs=self._evicted_logs,
                evicted_samples=self._evicted_samples,
                rejected=self._rejected,
            )

    def close(self) -> None:
        self._closed = True


class RingBufferStore(MemoryStore):
    """A :class:`MemoryStore` that keeps at most ``max_logs`` records and ``max_log_bytes`` of
    them (text + :data:`RECORD_OVERHEAD` each), and likewise for samples; the oldest go first and
    are counted in ``stats().evicted_*``."""

    kind = "ring"

    def __init__(
        self,
        max_logs: int = 100_000,
        max_log_bytes: int = 64 * 1024 * 1024,
        max_samples: int = 100_000,
        max_sample_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if min(max_logs, max_log_bytes, max_samples, max_sample_bytes) < 1:
            raise ValueError("ring buffer bounds are positive")
        super().__init__()
        self.max_logs = max_logs
        self.max_log_bytes = max_log_bytes
        self.max_samples = max_samples
        self.max_sample_bytes = max_sample_bytes

    def _after_append_logs(self) -> None:
        while self._log_count > self.max_logs or (
            self._log_bytes > self.max_log_bytes and self._log_count
        ):
            self._evict_oldest_log()
            self._evicted_logs += 1

    def _after_append_samples(self) -> None:
        while self._sample_count() > self.max_samples or (
            self._sample_bytes > self.max_sample_bytes and self._sample_count()
        ):
            self._evict_oldest_sample()
            self._evicted_samples += 1


def _sample_cost(sample: MetricSample) -> int:
    cost = SAMPLE_OVERHEAD + len(sample.name) + sum(len(k) + len(v) for k, v in sample.labels)
    if isinstance(sample.value, HistogramValue):
        cost += 16 * len(sample.value.counts)
    return cost


class _Ids:
    """A read-only view of the ids of a list of samples, for ``bisect``."""

    __slots__ = ("_items",)

    def __init__(self, items: list[MetricSample]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> int:
        return self._items[i].id
