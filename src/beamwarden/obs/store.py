"""Room: obs (stands alone). The one Protocol every store satisfies, and what they share.

Stores: :class:`~.memory_store.MemoryStore` (unbounded but for retention),
:class:`~.memory_store.RingBufferStore` (bounded by count and bytes) and
:class:`~.sqlite_store.SqliteStore`. ``tests/contract/test_obs_stores.py`` holds every one of them
to the same contract:

* ``append_*`` assigns ids that only grow (also across deletions), in the order given;
* ``read_*`` returns items with ``id > query.after_id`` (and ``ts >= since``, ``level >=
  min_level``, ``name ==``), in id order, at most ``limit``;
* ``latest_samples`` is the last-value table: one sample per series (name + labels), the most
  recent by ``ts`` (ties: the last appended), kept when history is deleted;
* ``delete_*``/``trim_*`` return how many items they removed; ``close`` is idempotent.

Methods may be called from any thread; each store serialises its writers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .levels import Level
from .query import LogQuery, SampleQuery
from .records import LogRecord, MetricSample


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What a store holds and what it let go. ``evicted_*`` counts items a bound discarded
    (ring buffer); ``unreadable`` counts stored items skipped because they could not be decoded;
    ``rejected`` counts items refused on write because they could not be encoded."""

    kind: str
    logs: int
    samples: int
    series: int
    evicted_logs: int = 0
    evicted_samples: int = 0
    unreadable: int = 0
    rejected: int = 0


@runtime_checkable
class ObsStore(Protocol):
    kind: str

    def append_logs(self, records: Sequence[LogRecord]) -> None: ...

    def read_logs(self, query: LogQuery) -> list[LogRecord]: ...

    def append_samples(self, samples: Sequence[MetricSample]) -> None: ...

    def read_samples(self, query: SampleQuery) -> list[MetricSample]: ...

    def latest_samples(self) -> list[MetricSample]: ...

    def delete_logs(self, before: float, levels: Collection[Level] | None = None) -> int:
        """Remove records older than ``before`` (only those of ``levels`` when given)."""
        ...

    def trim_logs(self, keep: int) -> int:
        """Keep the ``keep`` most recent records (by id)."""
        ...

    def delete_samples(self, before: float) -> int: ...

    def trim_samples(self, keep: int) -> int: ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


def clean_json(value: object) -> object:
    """``value`` with every string passed through :func:`clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8 (lone surrogates, which no encoder accepts, become ``?``)."""
    return text.encode("utf-8", "replace").decode("utf-8")
