"""Unit tests of obs metrics: running totals, label sets, histograms, snapshots, exposition."""

from __future__ import annotations

import threading

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from beamwarden.obs import (
    HistogramValue,
    InvalidMetric,
    ManualClock,
    MemoryStore,
    MetricKind,
    MetricRegistry,
    MetricSample,
    render_prometheus,
)
from beamwarden.obs.collector import wants_openmetrics

T0 = 1_800_000_000.0


@pytest.fixture
def registry() -> MetricRegistry:
    return MetricRegistry(clock=ManualClock(T0))


def test_a_counter_scrapes_as_its_running_total(registry: MetricRegistry) -> None:
    jobs = registry.counter("jobs_total", "Jobs done", labels=("kind",))
    for _ in range(3):
        jobs.labels(kind="a").inc()
    jobs.labels(kind="a").inc(2.5)
    jobs.labels(kind="b").inc()
    body, content_type = render_prometheus(registry)
    assert content_type.startswith("text/plain; version=")
    assert body.decode() == (
        "# HELP jobs_total Jobs done\n"
        "# TYPE jobs_total counter\n"
        'jobs_total{kind="a"} 5.5\n'
        'jobs_total{kind="b"} 1.0\n'
    )


def test_label_sets_accumulate_whatever_the_keyword_order(registry: MetricRegistry) -> None:
    requests = registry.counter("requests_total", labels=("method", "route"))
    requests.labels(method="GET", route="/a").inc()
    requests.labels(route="/a", method="GET").inc()
    requests.labels(method="GET", route="/b").inc()
    values = {s.labels: s.value for s in registry.latest_samples()}
    assert values == {
        (("method", "GET"), ("route", "/a")): 2.0,
        (("method", "GET"), ("route", "/b")): 1.0,
    }


def test_wrong_labels_and_values_are_refused(registry: MetricRegistry) -> None:
    counter = registry.counter("c_total", labels=("a",))
    with pytest.raises(InvalidMetric, match="takes the labels"):
        counter.labels(b="1")
    with pytest.raises(InvalidMetric, match="has labels"):
        counter.inc()
    with pytest.raises(InvalidMetric, match=">= 0"):
        counter.labels(a="1").inc(-1)
    with pytest.raises(InvalidMetric, match="already a counter"):
        registry.gauge("c_total")
    with pytest.raises(InvalidMetric):
        registry.counter("c_total", labels=("b",))
    assert registry.counter("c_total", labels=("a",)) is counter
    with pytest.raises(InvalidMetric):
        registry.counter("bad name")
    with pytest.raises(InvalidMetric):
        registry.counter("x", labels=("a", "a"))
    with pytest.raises(InvalidMetric):
        registry.gauge("g").set(float("nan"))
    with pytest.raises(InvalidMetric):
        registry.histogram("h", buckets=[float("inf")])
    registry.histogram("h2", buckets=[1, 2])
    with pytest.raises(InvalidMetric, match="buckets"):
        registry.histogram("h2", buckets=[1, 3])


def test_gauges_go_up_and_down(registry: MetricRegistry) -> None:
    gauge = registry.gauge("queue_depth")
    gauge.set(10)
    gauge.inc(5)
    gauge.dec(2)
    assert [s.value for s in registry.latest_samples()] == [13.0]


def test_histograms_are_cumulative_and_scrape_with_buckets() -> None:
    ticks = iter([10.0, 10.25])
    registry = MetricRegistry(clock=ManualClock(T0), timer=lambda: next(ticks))
    latency = registry.histogram("latency_seconds", "Latency", buckets=[0.1, 0.5, 1])
    for value in [0.05, 0.1, 0.3, 2.0]:
        latency.observe(value)
    with latency.time():
        pass
    (sample,) = registry.latest_samples()
    assert sample.value == HistogramValue((0.1, 0.5, 1.0), (2, 4, 4, 5), 2.7)
    text = render_prometheus(registry)[0].decode()
    assert 'latency_seconds_bucket{le="0.1"} 2.0' in text
    assert 'latency_seconds_bucket{le="+Inf"} 5.0' in text
    assert "latency_seconds_count 5.0" in text
    (family,) = parse_text(text)
    assert family.type == "histogram"


def test_too_many_label_sets_fold_into_other(registry: MetricRegistry) -> None:
    hits = registry.counter("hits_total", labels=("user",), max_series=3)
    for i in range(10):
        hits.labels(user=f"u{i}").inc()
    values = {dict(s.labels)["user"]: s.value for s in registry.latest_samples()}
    assert values == {"u0": 1.0, "u1": 1.0, "u2": 1.0, "other": 7.0}
    assert hits.overflowed == 7


def test_changed_samples_give_only_what_changed_since_the_last_call() -> None:
    clock = ManualClock(T0)
    registry = MetricRegistry(clock=clock)
    a = registry.counter("a_total")
    b = registry.gauge("b")
    a.inc()
    b.set(1)
    assert [(s.name, s.value, s.ts) for s in registry.changed_samples()] == [
        ("a_total", 1.0, T0),
        ("b", 1.0, T0),
    ]
    assert registry.changed_samples() == []
    clock.advance(10)
    a.inc()
    assert registry.changed_samples() == [
        MetricSample(T0 + 10, "a_total", MetricKind.COUNTER, (), 2.0)
    ]


def test_concurrent_increments_are_not_lost(registry: MetricRegistry) -> None:
    counter = registry.counter("n_total")

    def work() -> None:
        for _ in range(20_000):
            counter.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry.latest_samples()[0].value == 80_000.0


def test_the_text_format_is_valid_with_type_lines_and_openmetrics_too(
    registry: MetricRegistry,
) -> None:
    registry.counter("jobs_total", "Jobs", labels=("kind",)).labels(kind='we"ird\\').inc()
    registry.gauge("temp_celsius", "Temperature").set(-4.25)
    registry.histogram("lat_seconds", "Latency", buckets=[1]).observe(0.5)
    text = render_prometheus(registry)[0].decode()
    assert "# TYPE jobs_total counter" in text
    assert "# TYPE temp_celsius gauge" in text
    assert "# TYPE lat_seconds histogram" in text
    families = {f.name: f for f in parse_text(text)}
    assert families["jobs"].samples[0].labels == {"kind": 'we"ird\\'}
    assert families["temp_celsius"].samples[0].value == -4.25
    body, content_type = render_prometheus(registry, openmetrics=True)
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().endswith("# EOF\n")
    om = {f.name: f for f in parse_openmetrics(body.decode())}
    assert om["jobs"].type == "counter"
    assert om["jobs"].samples[0].name == "jobs_total"


def test_a_store_last_value_table_scrapes_like_the_registry(registry: MetricRegistry) -> None:
    registry.counter("jobs_total", labels=("kind",)).labels(kind="a").inc(3)
    registry.histogram("lat_seconds", buckets=[1]).observe(0.5)
    store = MemoryStore()
    store.append_samples(registry.changed_samples())
    assert render_prometheus(store)[0] == render_prometheus(registry)[0]


def test_accept_header_choice() -> None:
    assert wants_openmetrics("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert not wants_openmetrics("text/plain")
    assert not wants_openmetrics("")
