"""Room: obs (stands alone). Prometheus exposition through prometheus-client: a custom collector.

:class:`ObsCollector` turns a last-value table — a :class:`~.metrics.MetricRegistry` (this
process, current) or a store's ``latest_samples()`` (another process's file) — into
prometheus-client metric families; :func:`render` encodes them with prometheus-client's own text
or OpenMetrics encoder (``# HELP``/``# TYPE`` lines, ``_total``/``_bucket``/``_count``/``_sum``).
The cost is one pass over the series; the stored history is never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest as _text
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as _openmetrics
from prometheus_client.samples import Sample

from .metrics import MetricRegistry
from .records import HistogramValue, MetricKind, MetricSample

TEXT_TYPE = CONTENT_TYPE_LATEST
OPENMETRICS_CONTENT_TYPE = OPENMETRICS_TYPE


class SampleSource(Protocol):
    def latest_samples(self) -> list[MetricSample]: ...


def _float_text(bound: float) -> str:
    return repr(float(bound))


def _add_histogram(metric: Metric, name: str, base: dict[str, str], value: HistogramValue) -> None:
    for bound, count in zip((*value.bounds, float("inf")), value.counts, strict=True):
        le = "+Inf" if bound == float("inf") else _float_text(bound)
        metric.add_sample(name + "_bucket", {**base, "le": le}, float(count))
    metric.add_sample(name + "_count", base, float(value.observations))
    metric.add_sample(name + "_sum", base, value.sum)


def _fill(
    metric: Metric, kind: MetricKind, name: str, items: Iterable[tuple[dict[str, str], object]]
) -> None:
    """Add the samples of one family (``items``: label dicts and values) to ``metric``."""
    samples = metric.samples
    if kind is MetricKind.HISTOGRAM:
        for labels, value in items:
            assert isinstance(value, HistogramValue)
            _add_histogram(metric, name, labels, value)
        return
    # Sample objects straight into the list: Metric.add_sample does just this, one call more
    sample_name = name + "_total" if kind is MetricKind.COUNTER else name
    samples.extend(
        Sample(sample_name, labels, value, None, None)  # type: ignore[arg-type]
        for labels, value in items
    )


def _family_name(name: str, kind: MetricKind) -> str:
    if kind is MetricKind.COUNTER and name.endswith("_total"):
        return name[: -len("_total")]
    return name


class ObsCollector:
    """A prometheus-client collector over a registry or a store's last-value table."""

    def __init__(self, source: MetricRegistry | SampleSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        if isinstance(self.source, MetricRegistry):
            for family in self.source.families():
                name = _family_name(family.name, family.kind)
                metric = Metric(name, family.help, family.kind.value)
                _fill(metric, family.kind, name, ((s.label_dict, s.value) for s in family.series()))
                yield metric
            return
        yield from families_from_samples(self.source.latest_samples())

    def describe(self) -> Iterable[Metric]:
        return ()


def families_from_samples(
    samples: Iterable[MetricSample], helps: dict[str, str] | None = None
) -> Iterator[Metric]:
    """Group samples by name into families, in the order names first appear (a name stored
    with two kinds keeps the first)."""
    groups: dict[str, tuple[MetricKind, list[tuple[dict[str, str], object]]]] = {}
    for sample in samples:
        group = groups.get(sample.name)
        if group is None:
            group = groups[sample.name] = (sample.kind, [])
        if group[0] is sample.kind:
            group[1].append((dict(sample.labels), sample.value))
    for name, (kind, items) in groups.items():
        family = _family_name(name, kind)
        metric = Metric(family, (helps or {}).get(name, ""), kind.value)
        _fill(metric, kind, family, items)
        yield metric


def render_prometheus(
    source: MetricRegistry | SampleSource, openmetrics: bool = False
) -> tuple[bytes, str]:
    """The scrape body and its content type."""
    collector = ObsCollector(source)
    if openmetrics:
        return _openmetrics(collector), OPENMETRICS_CONTENT_TYPE  # type: ignore[no-untyped-call]
    return _text(collector), TEXT_TYPE


def wants_openmetrics(accept: str) -> bool:
    """What prometheus-client's ``choose_encoder`` decides, without its other branches."""
    for part in accept.split(","):
        media = part.split(";")[0].strip()
        if media == "application/openmetrics-text":
            return True
    return False
