"""Room: obs (stands alone). Counters, gauges and histograms with labels, and their registry.

A family (``registry.counter("http_requests_total", "…", labels=("method", "route"))``) has one
series per label set (``family.labels(method="GET", route="/x")``). A series keeps its running
state in memory — a counter its total, a gauge its value, a histogram its bucket counts and sum —
and that in-memory table is what a scrape reads (:mod:`.collector`), so a scrape costs the same
whatever the stored history holds. :meth:`MetricRegistry.changed_samples` gives one sample per
series changed since its last call; the runtime (:mod:`.runtime`) writes those to the store for
``?since=`` queries and out-of-process readers.

A family holds at most ``max_series`` label sets; further ones are counted into one series whose
label values are all ``"other"`` (and in :attr:`MetricFamily.overflowed`), so a label fed with
unbounded values (user ids, raw paths) cannot exhaust memory.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

from .clock import Clock, SystemClock
from .errors import InvalidMetric
from .records import (
    HistogramValue,
    Labels,
    MetricKind,
    MetricSample,
    check_label_name,
    check_metric_name,
)

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: label sets a family holds before folding new ones into the ``"other"`` series
MAX_SERIES = 10_000
OVERFLOW_VALUE = "other"


class _Series:
    __slots__ = ("_lock", "_recorded", "_version", "label_dict", "labels")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        #: the labels as a dict, made once for the exposition (read-only)
        self.label_dict = dict(labels)
        self._lock = threading.Lock()
        self._version = 0
        self._recorded = 0


class CounterSeries(_Series):
    """A running total that only goes up."""

    __slots__ = ("_value",)

    def __init__(self, labels: Labels) -> None:
        super().__init__(labels)
        self._value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if not amount >= 0 or math.isinf(amount):
            raise InvalidMetric("a counter increases by a finite amount >= 0")
        with self._lock:
            self._value += amount
            self._version += 1

    @property
    def value(self) -> float:
        return self._value


class GaugeSeries(_Series):
    """A value that goes up and down."""

    __slots__ = ("_value",)

    def __init__(self, labels: Labels) -> None:
        super().__init__(labels)
        self._value = 0.0

    def set(self, value: float) -> None:
        if not math.isfinite(value):
            raise InvalidMetric("a gauge holds a finite number")
        with self._lock:
            self._value = float(value)
            self._version += 1

    def inc(self, amount: float = 1.0) -> None:
        if not math.isfinite(amount):
            raise InvalidMetric("a gauge moves by a finite amount")
        with self._lock:
            self._value += amount
            self._version += 1

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)

    @property
    def value(self) -> float:
        return self._value


class HistogramSeries(_Series):
    """Counts of observations per bucket (upper bounds), their number and sum."""

    __slots__ = ("_bounds", "_counts", "_sum", "_timer")

    def __init__(
        self, labels: Labels, bounds: tuple[float, ...], timer: Callable[[], float]
    ) -> None:
        super().__init__(labels)
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._timer = timer

    def observe(self, value: float) -> None:
        if not math.isfinite(value):
            raise InvalidMetric("a histogram observes finite numbers")
        index = bisect.bisect_left(self._bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value
            self._version += 1

    @contextmanager
    def time(self) -> Iterator[None]:
        """Observe how long the block took, in seconds (also when it raises)."""
        start = self._timer()
        try:
            yield
        finally:
            self.observe(self._timer() - start)

    @property
    def value(self) -> HistogramValue:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        running = 0
        for i, count in enumerate(counts):
            running += count
            counts[i] = running
        return HistogramValue(self._bounds, tuple(counts), total)


S = TypeVar("S", bound=_Series)


class MetricFamily(Generic[S]):
    """All the series of one metric name."""

    kind: MetricKind

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Sequence[str],
        make: Callable[[Labels], S],
        max_series: int = MAX_SERIES,
    ) -> None:
        self.name = check_metric_name(name)
        self.help = help
        self.label_names = tuple(check_label_name(n) for n in label_names)
        if len(set(self.label_names)) != len(self.label_names):
            raise InvalidMetric(f"{name}: a label name appears twice")
        self._label_set = frozenset(self.label_names)
        self._order = sorted(range(len(self.label_names)), key=lambda i: self.label_names[i])
        self._make = make
        self._series: dict[tuple[str, ...], S] = {}
        self._lock = threading.Lock()
        self.max_series = max_series
        #: label sets folded into the ``"other"`` series because ``max_series`` was reached
        self.overflowed = 0

    def labels(self, **values: object) -> S:
        """The series of these label values (every label of the family, nothing else)."""
        if values.keys() != self._label_set:
            raise InvalidMetric(
                f"{self.name} takes the labels {list(self.label_names)}, got {sorted(values)}"
            )
        key = tuple(str(values[n]) for n in self.label_names)
        series = self._series.get(key)
        if series is None:
            series = self._add(key)
        return series

    def _add(self, key: tuple[str, ...]) -> S:
        with self._lock:
            series = self._series.get(key)
            if series is not None:
                return series
            if len(self._series) >= self.max_series:
                self.overflowed += 1
                key = tuple(OVERFLOW_VALUE for _ in key)
                series = self._series.get(key)
                if series is not None:
                    return series
            labels = tuple((self.label_names[i], key[i]) for i in self._order)
            series = self._series[key] = self._make(labels)
            return series

    def _only(self) -> S:
        if self.label_names:
            raise InvalidMetric(f"{self.name} has labels: use .labels(...)")
        return self.labels()

    def series(self) -> list[S]:
        with self._lock:
            return list(self._series.values())


class Counter(MetricFamily[CounterSeries]):
    kind = MetricKind.COUNTER

    def inc(self, amount: float = 1.0) -> None:
        """For a family without labels."""
        self._only().inc(amount)


class Gauge(MetricFamily[GaugeSeries]):
    kind = MetricKind.GAUGE

    def set(self, value: float) -> None:
        self._only().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)


class Histogram(MetricFamily[HistogramSeries]):
    kind = MetricKind.HISTOGRAM
    bounds: tuple[float, ...]

    def observe(self, value: float) -> None:
        self._only().observe(value)

    @contextmanager
    def time(self) -> Iterator[None]:
        with self._only().time():
            yield


AnyFamily = Counter | Gauge | Histogram


class MetricRegistry:
    """The families of one app. Asking again for a family with the same name, kind and labels
    returns the same family; anything else with a taken name is :class:`InvalidMetric`."""

    def __init__(
        self, clock: Clock | None = None, timer: Callable[[], float] = time.perf_counter
    ) -> None:
        self.clock = clock or SystemClock()
        self.timer = timer
        self._families: dict[str, AnyFamily] = {}
        self._lock = threading.Lock()

    def _get(
        self, name: str, kind: type[AnyFamily], label_names: Sequence[str]
    ) -> AnyFamily | None:
        family = self._families.get(name)
        if family is None:
            return None
        if type(family) is not kind or family.label_names != tuple(label_names):
            raise InvalidMetric(
                f"{name} is already a {family.kind} with labels {family.label_names}"
            )
        return family

    def counter(
        self, name: str, help: str = "", labels: Sequence[str] = (), max_series: int = MAX_SERIES
    ) -> Counter:
        with self._lock:
            found = self._get(name, Counter, labels)
            if found is None:
                found = self._families[name] = Counter(
                    name, help, labels, CounterSeries, max_series
                )
            assert isinstance(found, Counter)
            return found

    def gauge(
        self, name: str, help: str = "", labels: Sequence[str] = (), max_series: int = MAX_SERIES
    ) -> Gauge:
        with self._lock:
            found = self._get(name, Gauge, labels)
            if found is None:
                found = self._families[name] = Gauge(name, help, labels, GaugeSeries, max_series)
            assert isinstance(found, Gauge)
            return found

    def histogram(
        self,
        name: str,
        help: str = "",
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_series: int = MAX_SERIES,
    ) -> Histogram:
        bounds = tuple(sorted({float(b) for b in buckets if not math.isinf(b)}))
        if not bounds or any(math.isnan(b) for b in bounds):
            raise InvalidMetric(f"{name}: buckets are finite numbers, at least one")
        with self._lock:
            found = self._get(name, Histogram, labels)
            if found is None:
                timer = self.timer
                found = Histogram(
                    name, help, labels, lambda lb: HistogramSeries(lb, bounds, timer), max_series
                )
                found.bounds = bounds
                self._families[name] = found
            assert isinstance(found, Histogram)
            if found.bounds != bounds:
                raise InvalidMetric(f"{name} already has the buckets {found.bounds}")
            return found

    def families(self) -> list[AnyFamily]:
        with self._lock:
            return list(self._families.values())

    def helps(self) -> dict[str, str]:
        return {f.name: f.help for f in self.families()}

    def latest_samples(self) -> list[MetricSample]:
        """Every series' current value (the last-value table), stamped now."""
        now = self.clock.now()
        return [
            MetricSample(now, family.name, family.kind, series.labels, series.value)
            for family in self.families()
            for series in family.series()
        ]

    def changed_samples(self) -> list[MetricSample]:
        """One sample per series changed since the previous call, stamped now."""
        now = self.clock.now()
        out: list[MetricSample] = []
        for family in self.families():
            for series in family.series():
                version = series._version
                if version != series._recorded:
                    series._recorded = version
                    out.append(
                        MetricSample(now, family.name, family.kind, series.labels, series.value)
                    )
        return out
