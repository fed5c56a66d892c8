"""Unit tests of the exporters: batching by size and age, marks moved only on acceptance,
refused batches dropped and counted, and the exact payload of each exporter (OTLP/JSON field
names as the OTLP specification writes them). httpx.MockTransport; time is a manual clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamwarden.obs import (
    HistogramValue,
    Level,
    ManualClock,
    MemoryStore,
    MetricRegistry,
    Observability,
    new_log_record,
    new_sample,
)
from beamwarden.obs.exporters import (
    FileCursors,
    HttpJsonExporter,
    LokiExporter,
    MemoryCursors,
    OtlpExporter,
    PushgatewayExporter,
    RetryPolicy,
    SqliteCursors,
)
from beamwarden.obs.exporters.base import BatchExporter
from beamwarden.obs.exporters.otlp import protobuf_bytes
from beamwarden.obs.exporters.pushgateway import group_url

T0 = 1_800_000_000.0
T0_NS = "1800000000000000000"
FAST = RetryPolicy(initial_backoff=1.0, max_backoff=4.0, jitter=0.0, deadline=10.0)


class Receiver:
    """A MockTransport answering from a script (200 once the script is used up)."""

    def __init__(self, answers: list[int | httpx.Response] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[httpx.Request] = []
        self.client = httpx.Client(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        return answer if isinstance(answer, httpx.Response) else httpx.Response(answer)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def make(
    factory: Callable[..., BatchExporter],
    receiver: Receiver,
    clock: ManualClock,
    store: MemoryStore | None = None,
    registry: MetricRegistry | None = None,
    **options: Any,
) -> BatchExporter:
    def wait(seconds: float) -> bool:
        clock.advance(seconds)
        return False

    exporter = factory(
        client=receiver.client, retry=FAST, monotonic=clock.now, wait=wait, **options
    )
    exporter.bind(store or MemoryStore(), cursors=MemoryCursors(), registry=registry, clock=clock)
    return exporter


def log_at(store: MemoryStore, n: int, ts: float = T0, level: str = "info") -> None:
    store.append_logs([new_log_record(level, f"m{i}", ts=ts + i, logger="app") for i in range(n)])


def http_json(**options: Any) -> HttpJsonExporter:
    return HttpJsonExporter("http://rx.test/ingest", metrics=False, **options)


def test_a_full_batch_goes_at_once_and_a_backlog_batch_after_batch() -> None:
    clock, store, receiver = ManualClock(T0), MemoryStore(), Receiver()
    exporter = make(http_json, receiver, clock, store, batch_size=3, max_delay=5.0)
    log_at(store, 7)
    assert exporter.run_once() == 6  # two full batches; the last record waits for company
    assert [(b["first_id"], b["last_id"]) for b in receiver.bodies()] == [(1, 3), (4, 6)]
    assert exporter.cursors.get("http/logs") == 6


def test_a_partial_batch_goes_once_it_has_waited_max_delay() -> None:
    clock, store, receiver = ManualClock(T0), MemoryStore(), Receiver()
    exporter = make(http_json, receiver, clock, store, batch_size=100, max_delay=5.0)
    log_at(store, 2)
    assert exporter.run_once() == 0  # first seen now
    clock.advance(4.9)
    assert exporter.run_once() == 0
    clock.advance(0.1)
    assert exporter.run_once() == 2
    assert len(receiver.requests) == 1
    log_at(store, 1)
    assert exporter.run_once() == 0  # the age counts from when the new record was seen
    assert exporter.run_once(force=True) == 1


def test_the_mark_stays_while_the_receiver_is_down_and_nothing_is_lost() -> None:
    clock, store = ManualClock(T0), MemoryStore()
    registry = MetricRegistry(clock=clock)
    receiver = Receiver([503] * 4 + [200])
    exporter = make(http_json, receiver, clock, store, registry, batch_size=2, max_delay=0)
    log_at(store, 2)
    assert exporter.run_once() == 0  # 503, 1 s, 503, 2 s, 503, 4 s, 503: the next wait passes 10 s
    assert exporter.cursors.get("http/logs") == 0
    assert exporter.failures == 1
    assert exporter.run_once() == 2  # the next pass: accepted
    assert exporter.cursors.get("http/logs") == 2
    bodies = receiver.bodies()
    assert len(bodies) == 5
    assert all(b == bodies[0] for b in bodies)  # the very same batch each time
    samples = {(s.name, s.labels): s.value for s in registry.latest_samples()}
    assert samples[("obs_export_items_total", (("exporter", "http"), ("stream", "logs")))] == 2
    assert samples[("obs_export_failures_total", (("exporter", "http"),))] == 1


def test_a_refused_batch_is_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    clock, store = ManualClock(T0), MemoryStore()
    registry = MetricRegistry(clock=clock)
    receiver = Receiver([httpx.Response(400, text="bad batch"), 200])
    exporter = make(http_json, receiver, clock, store, registry, batch_size=2, max_delay=0)
    log_at(store, 4)
    with caplog.at_level("WARNING", logger="beamwarden.obs.export"):
        assert exporter.run_once() == 2
    assert exporter.dropped["logs"] == 2
    assert exporter.cursors.get("http/logs") == 4
    assert "refused 2 logs (ids 1..2) with 400, dropped: bad batch" in caplog.text
    samples = {(s.name, s.labels): s.value for s in registry.latest_samples()}
    assert samples[("obs_export_dropped_total", (("exporter", "http"), ("stream", "logs")))] == 2


def test_http_json_payloads_are_the_shapes_of_the_endpoints() -> None:
    clock, store, receiver = ManualClock(T0), MemoryStore(), Receiver()
    exporter = make(
        lambda **o: HttpJsonExporter("http://rx.test/ingest", source="station-7", **o),
        receiver,
        clock,
        store,
        max_delay=0,
    )
    store.append_logs([new_log_record("warning", "hot", ts=T0, logger="t", attrs={"c": 71})])
    store.append_samples([new_sample("up", "gauge", 1, ts=T0, labels={"node": "a"})])
    assert exporter.run_once() == 2
    assert [r.url for r in receiver.requests] == ["http://rx.test/ingest"] * 2
    assert receiver.bodies() == [
        {
            "source": "station-7",
            "stream": "logs",
            "first_id": 1,
            "last_id": 1,
            "items": [
                {
                    "id": 1,
                    "ts": T0,
                    "level": "warning",
                    "logger": "t",
                    "message": "hot",
                    "attrs": {"c": 71},
                }
            ],
        },
        {
            "source": "station-7",
            "stream": "samples",
            "first_id": 1,
            "last_id": 1,
            "items": [
                {
                    "id": 1,
                    "ts": T0,
                    "name": "up",
                    "kind": "gauge",
                    "labels": {"node": "a"},
                    "value": 1.0,
                }
            ],
        },
    ]


OTLP_LOGS = {
    "resourceLogs": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "station"}},
                    {"key": "host.name", "value": {"stringValue": "pi-7"}},
                ]
            },
            "scopeLogs": [
                {
                    "scope": {"name": "app"},
                    "logRecords": [
                        {
                            "timeUnixNano": T0_NS,
                            "observedTimeUnixNano": "1800000010000000000",
                            "severityNumber": 13,
                            "severityText": "WARNING",
                            "body": {"stringValue": "hot"},
                            "attributes": [
                                {"key": "count", "value": {"intValue": "71"}},
                                {"key": "ratio", "value": {"doubleValue": 0.5}},
                                {"key": "ok", "value": {"boolValue": False}},
                                {"key": "none", "value": {}},
                                {
                                    "key": "tags",
                                    "value": {"arrayValue": {"values": [{"stringValue": "a"}]}},
                                },
                                {
                                    "key": "where",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {"key": "room", "value": {"stringValue": "lab"}}
                                            ]
                                        }
                                    },
                                },
                            ],
                        },
                        {
                            "timeUnixNano": "1800000000250000000",
                            "observedTimeUnixNano": "1800000010000000000",
                            "severityNumber": 21,
                            "severityText": "CRITICAL",
                            "body": {"stringValue": "fire"},
                        },
                    ],
                },
                {
                    "scope": {"name": "db"},
                    "logRecords": [
                        {
                            "timeUnixNano": "1800000001000000000",
                            "observedTimeUnixNano": "1800000010000000000",
                            "severityNumber": 5,
                            "severityText": "DEBUG",
                            "body": {"stringValue": "query"},
                        }
                    ],
                },
            ],
        }
    ]
}


def otlp(**options: Any) -> OtlpExporter:
    return OtlpExporter(
        "http://collector.test:4318/", service_name="station", resource={"host.name": "pi-7"},
        **options,
    )  # fmt: skip


def fill_otlp_logs(store: MemoryStore) -> None:
    store.append_logs(
        [
            new_log_record(
                "warning",
                "hot",
                ts=T0,
                logger="app",
                attrs={
                    "count": 71,
                    "ratio": 0.5,
                    "ok": False,
                    "none": None,
                    "tags": ["a"],
                    "where": {"room": "lab"},
                },
            ),
            new_log_record("critical", "fire", ts=T0 + 0.25, logger="app"),
            new_log_record("debug", "query", ts=T0 + 1, logger="db"),
        ]
    )


def test_otlp_json_logs_exactly() -> None:
    clock, store, receiver = ManualClock(T0 + 10), MemoryStore(), Receiver()
    exporter = make(otlp, receiver, clock, store, max_delay=0)
    fill_otlp_logs(store)
    assert exporter.run_once() == 3
    (request,) = receiver.requests
    assert str(request.url) == "http://collector.test:4318/v1/logs"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == OTLP_LOGS


def test_otlp_json_metrics_exactly() -> None:
    clock, store, receiver = ManualClock(T0), MemoryStore(), Receiver()
    registry = MetricRegistry(clock=clock)
    registry.counter("jobs_total", "Jobs done", labels=("queue",))
    exporter = make(otlp, receiver, clock, store, registry, max_delay=0)
    hist = HistogramValue((0.1, 0.5), (1, 3, 4), 1.75)
    store.append_samples(
        [
            new_sample("jobs_total", "counter", 3, ts=T0, labels={"queue": "high"}),
            new_sample("temp_celsius", "gauge", 21.5, ts=T0),
            new_sample("job_seconds", "histogram", hist, ts=T0 + 1),
            new_sample("jobs_total", "counter", 5, ts=T0 + 10, labels={"queue": "high"}),
        ]
    )
    assert exporter.run_once() == 4
    (request,) = receiver.requests
    assert str(request.url) == "http://collector.test:4318/v1/metrics"
    assert json.loads(request.content) == {
        "resourceMetrics": [
            {
                "resource": OTLP_LOGS["resourceLogs"][0]["resource"],
                "scopeMetrics": [
                    {
                        "scope": {"name": "beamwarden.obs"},
                        "metrics": [
                            {
                                "name": "jobs_total",
                                "description": "Jobs done",
                                "sum": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": T0_NS,
                                            "attributes": [
                                                {"key": "queue", "value": {"stringValue": "high"}}
                                            ],
                                            "asDouble": 3.0,
                                        },
                                        {
                                            "timeUnixNano": "1800000010000000000",
                                            "attributes": [
                                                {"key": "queue", "value": {"stringValue": "high"}}
                                            ],
                                            "asDouble": 5.0,
                                        },
                                    ],
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                },
                            },
                            {
                                "name": "temp_celsius",
                                "gauge": {
                                    "dataPoints": [{"timeUnixNano": T0_NS, "asDouble": 21.5}]
                                },
                            },
                            {
                                "name": "job_seconds",
                                "histogram": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "1800000001000000000",
                                            "count": "4",
                                            "sum": 1.75,
                                            "bucketCounts": ["1", "2", "1"],
                                            "explicitBounds": [0.1, 0.5],
                                        }
                                    ],
                                    "aggregationTemporality": 2,
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }


def test_otlp_protobuf_carries_the_same_message() -> None:
    pytest.importorskip("opentelemetry.proto", reason="the otlp-proto extra is not installed")
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    clock, store, receiver = ManualClock(T0 + 10), MemoryStore(), Receiver()
    exporter = make(otlp, receiver, clock, store, max_delay=0, encoding="protobuf")
    fill_otlp_logs(store)
    exporter.run_once()
    (request,) = receiver.requests
    assert request.headers["content-type"] == "application/x-protobuf"
    decoded = ExportLogsServiceRequest.FromString(request.content)
    record = decoded.resource_logs[0].scope_logs[0].log_records[0]
    assert (record.time_unix_nano, record.severity_number, record.body.string_value) == (
        1_800_000_000_000_000_000,
        13,
        "hot",
    )
    assert json_format.MessageToDict(decoded, use_integers_for_enums=True) == OTLP_LOGS
    assert protobuf_bytes("logs", OTLP_LOGS) == request.content


def test_loki_push_body_exactly() -> None:
    clock, store, receiver = ManualClock(T0), MemoryStore(), Receiver([204])
    exporter = make(
        lambda **o: LokiExporter(
            "http://loki.test:3100", service="station", labels={"env": "lab"}, tenant="t1", **o
        ),
        receiver,
        clock,
        store,
        max_delay=0,
    )
    fill_otlp_logs(store)
    store.append_samples([new_sample("up", "gauge", 1, ts=T0)])  # Loki takes logs only
    assert exporter.run_once() == 3
    (request,) = receiver.requests
    assert str(request.url) == "http://loki.test:3100/loki/api/v1/push"
    assert request.headers["x-scope-orgid"] == "t1"
    labels = {"service_name": "station", "env": "lab"}
    attrs = {"count": 71, "ratio": 0.5, "ok": False, "none": None, "tags": ["a"]}
    attrs["where"] = {"room": "lab"}
    assert json.loads(request.content) == {
        "streams": [
            {
                "stream": {**labels, "level": "warning"},
                "values": [
                    [
                        T0_NS,
                        json.dumps(
                            {"logger": "app", "message": "hot", "attrs": attrs},
                            separators=(",", ":"),
                        ),
                    ]
                ],
            },
            {
                "stream": {**labels, "level": "critical"},
                "values": [
                    [
                        "1800000000250000000",
                        '{"logger":"app","message":"fire","attrs":{}}',
                    ]
                ],
            },
            {
                "stream": {**labels, "level": "debug"},
                "values": [["1800000001000000000", '{"logger":"db","message":"query","attrs":{}}']],
            },
        ]
    }
    line = json.loads(request.content)["streams"][0]["values"][0][1]
    assert json.loads(line)["attrs"] == attrs


def test_pushgateway_puts_the_current_values_every_interval() -> None:
    clock, store, receiver = ManualClock(T0), MemoryStore(), Receiver()
    registry = MetricRegistry(clock=clock)
    jobs = registry.counter("jobs_total", "Jobs done", labels=("queue",))
    jobs.labels(queue="high").inc(3)
    exporter = make(
        lambda **o: PushgatewayExporter(
            "http://pgw.test:9091/", job="station", grouping={"instance": "pi/7"}, **o
        ),
        receiver,
        clock,
        store,
        registry,
        interval=15.0,
    )
    assert exporter.run_once() > 0
    clock.advance(10)
    assert exporter.run_once() == 0
    clock.advance(5)
    jobs.labels(queue="high").inc(2)
    assert exporter.run_once() > 0
    first, second = receiver.requests
    assert first.method == "PUT"
    assert str(first.url) == "http://pgw.test:9091/metrics/job/station/instance@base64/cGkvNw=="
    assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b'# TYPE jobs_total counter\njobs_total{queue="high"} 3.0\n' in first.content
    assert b'jobs_total{queue="high"} 5.0\n' in second.content
    assert exporter.pushes == 2


def test_pushgateway_group_urls() -> None:
    assert group_url("http://p:9091", "a b", {}) == "http://p:9091/metrics/job/a%20b"
    assert group_url("http://p:9091", "j", {"x": ""}) == "http://p:9091/metrics/job/j/x@base64/="


def test_cursor_stores_remember(tmp_path: Path) -> None:
    for make_store in (
        lambda: FileCursors(tmp_path / "marks.json"),
        lambda: SqliteCursors(tmp_path / "obs.db"),
    ):
        first = make_store()
        assert first.get("otlp/logs") == 0
        first.put("otlp/logs", 41, T0)
        first.put("otlp/logs", 42, T0)
        first.put("loki/logs", 7, T0)
        first.close()
        again = make_store()
        assert (again.get("otlp/logs"), again.get("loki/logs"), again.get("x/y")) == (42, 7, 0)
        again.close()


def test_observability_binds_starts_and_sends_the_rest_on_close(tmp_path: Path) -> None:
    clock, receiver = ManualClock(T0), Receiver()
    obs = Observability.sqlite(tmp_path / "obs.db", clock=clock)
    exporter = HttpJsonExporter(
        "http://rx.test/ingest", client=receiver.client, batch_size=1000, max_delay=60.0
    )
    assert obs.add_exporter(exporter) is exporter
    with pytest.raises(ValueError, match="already added"):
        obs.add_exporter(HttpJsonExporter("http://elsewhere.test/"))
    assert isinstance(exporter.cursors, SqliteCursors)
    obs.registry.gauge("up").set(1)
    obs.store.append_logs([new_log_record(Level.INFO, "hello", ts=T0)])
    obs.close()  # last snapshot, then the exporter's last pass, then the store closes
    assert [(b["stream"], len(b["items"])) for b in receiver.bodies()] == [
        ("logs", 1),
        ("samples", 1),
    ]
    marks = SqliteCursors(tmp_path / "obs.db")
    assert (marks.get("http/logs"), marks.get("http/samples")) == (1, 1)
    marks.close()


def test_refusals_are_logged_once_per_streak(caplog: pytest.LogCaptureFixture) -> None:
    clock, store = ManualClock(T0), MemoryStore()
    receiver = Receiver([400, 400, 400, 200])
    exporter = make(http_json, receiver, clock, store, batch_size=1, max_delay=0)
    log_at(store, 4)
    with caplog.at_level("INFO", logger="beamwarden.obs.export"):
        assert exporter.run_once() == 1
    assert exporter.dropped["logs"] == 3
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [
        "receiver refused 1 logs (ids 1..1) with 400, dropped",
        "receiver accepts batches again",
    ]
