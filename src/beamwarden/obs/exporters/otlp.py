"""Room: obs (stands alone; ``opentelemetry-proto`` only for the protobuf encoding). The OTLP
over HTTP exporter: logs to ``{url}/v1/logs``, metric samples to ``{url}/v1/metrics``.

The encoding is OTLP/JSON by default (field names in lowerCamelCase as the OTLP specification
writes them, 64-bit integers as decimal strings, enums as numbers); ``encoding="protobuf"`` sends
``application/x-protobuf`` built from the same message with opentelemetry-proto (the optional
extra ``beamwarden[otlp-proto]``).

* A log record: ``timeUnixNano``, ``observedTimeUnixNano``, ``severityNumber`` (DEBUG 5, INFO 9,
  WARN 13, ERROR 17, FATAL 21) and ``severityText``, ``body.stringValue`` (the message),
  ``attributes`` (its attrs). Records are grouped by logger, one ``scopeLogs`` (scope name =
  logger name) each.
* A metric sample: a counter is a ``sum`` (monotonic, cumulative), a gauge a ``gauge``, a
  histogram a ``histogram`` (cumulative; ``bucketCounts`` per bucket, not cumulative, as OTLP
  wants them). Samples of one name in a batch are the data points of one metric.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from beamwarden.obs import _json
from beamwarden.obs.clock import Clock
from beamwarden.obs.levels import Level
from beamwarden.obs.metrics import MetricRegistry
from beamwarden.obs.records import HistogramValue, JsonValue, LogRecord, MetricKind, MetricSample
from beamwarden.obs.store import ObsStore

from .base import LOGS, SAMPLES, BatchExporter, unix_nanos
from .cursors import CursorStore
from .sender import Payload

SEVERITY_NUMBER = {
    Level.DEBUG: 5,
    Level.INFO: 9,
    Level.WARNING: 13,
    Level.ERROR: 17,
    Level.CRITICAL: 21,
}
AGGREGATION_TEMPORALITY_CUMULATIVE = 2
SCOPE = "beamwarden.obs"
JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"

Json = dict[str, Any]


class OtlpExporter(BatchExporter):
    def __init__(
        self,
        url: str,
        *,
        name: str = "otlp",
        service_name: str = "beamwarden",
        resource: Mapping[str, JsonValue] | None = None,
        encoding: Literal["json", "protobuf"] = "json",
        logs: bool = True,
        metrics: bool = True,
        **options: Any,
    ) -> None:
        if encoding not in {"json", "protobuf"}:
            raise ValueError("encoding is 'json' or 'protobuf'")
        if encoding == "protobuf":
            _protobuf_classes()  # fail now, not at the first batch
        super().__init__(name=name, **options)
        base = url.rstrip("/")
        for suffix in ("/v1/logs", "/v1/metrics"):
            base = base.removesuffix(suffix)
        self.logs_url = base + "/v1/logs"
        self.metrics_url = base + "/v1/metrics"
        self.encoding = encoding
        self.resource: Json = {
            "attributes": attributes({"service.name": service_name, **(resource or {})})
        }
        self.helps: dict[str, str] = {}
        self._registry: MetricRegistry | None = None
        self.streams = frozenset(s for s, on in ((LOGS, logs), (SAMPLES, metrics)) if on)

    def bind(
        self,
        store: ObsStore,
        *,
        cursors: CursorStore,
        registry: MetricRegistry | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().bind(store, cursors=cursors, registry=registry, clock=clock)
        self._registry = registry

    def _payload(self, url: str, message: Json, kind: str) -> Payload:
        if self.encoding == "json":
            return Payload(url, _json.dumps(message), JSON_TYPE)
        return Payload(url, protobuf_bytes(kind, message), PROTOBUF_TYPE)

    def encode_logs(self, records: Sequence[LogRecord]) -> Payload:
        message = logs_request(records, self.resource, self.clock.now())
        return self._payload(self.logs_url, message, LOGS)

    def encode_samples(self, samples: Sequence[MetricSample]) -> Payload:
        helps = self._registry.helps() if self._registry is not None else self.helps
        return self._payload(
            self.metrics_url, metrics_request(samples, self.resource, helps), SAMPLES
        )


# -- OTLP/JSON messages -------------------------------------------------------------------------


def any_value(value: JsonValue) -> Json:
    """An OTLP ``AnyValue``: ``intValue`` as a string (int64), ``{}`` for null."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"kvlistValue": {"values": attributes(value)}}


def attributes(values: Mapping[str, JsonValue]) -> list[Json]:
    return [{"key": key, "value": any_value(value)} for key, value in values.items()]


def log_record(rec: LogRecord, observed_ns: int) -> Json:
    out: Json = {
        "timeUnixNano": str(unix_nanos(rec.ts)),
        "observedTimeUnixNano": str(observed_ns),
        "severityNumber": SEVERITY_NUMBER[rec.level],
        "severityText": rec.level.name,
        "body": {"stringValue": rec.message},
    }
    if rec.attrs:
        out["attributes"] = attributes(rec.attrs)
    return out


def logs_request(records: Sequence[LogRecord], resource: Json, now: float) -> Json:
    """An ``ExportLogsServiceRequest``."""
    observed = unix_nanos(now)
    scopes: dict[str, list[Json]] = {}
    for rec in records:
        scopes.setdefault(rec.logger, []).append(log_record(rec, observed))
    return {
        "resourceLogs": [
            {
                "resource": resource,
                "scopeLogs": [
                    {"scope": {"name": logger}, "logRecords": items}
                    for logger, items in scopes.items()
                ],
            }
        ]
    }


def data_point(sample: MetricSample) -> Json:
    point: Json = {"timeUnixNano": str(unix_nanos(sample.ts))}
    if sample.labels:
        point["attributes"] = attributes(dict(sample.labels))
    value = sample.value
    if isinstance(value, HistogramValue):
        counts = value.counts
        per_bucket = [counts[0], *(counts[i] - counts[i - 1] for i in range(1, len(counts)))]
        point["count"] = str(value.observations)
        point["sum"] = value.sum
        point["bucketCounts"] = [str(c) for c in per_bucket]
        point["explicitBounds"] = list(value.bounds)
    else:
        point["asDouble"] = float(value)
    return point


def metrics_request(
    samples: Sequence[MetricSample], resource: Json, helps: Mapping[str, str]
) -> Json:
    """An ``ExportMetricsServiceRequest``: one metric per name (the first kind seen)."""
    metrics: dict[str, Json] = {}
    for sample in samples:
        metric = metrics.get(sample.name)
        if metric is None:
            metric = metrics[sample.name] = _new_metric(sample.name, sample.kind, helps)
        body = metric.get(_BODY[sample.kind])
        if body is not None:
            body["dataPoints"].append(data_point(sample))
    return {
        "resourceMetrics": [
            {
                "resource": resource,
                "scopeMetrics": [{"scope": {"name": SCOPE}, "metrics": list(metrics.values())}],
            }
        ]
    }


_BODY = {MetricKind.COUNTER: "sum", MetricKind.GAUGE: "gauge", MetricKind.HISTOGRAM: "histogram"}


def _new_metric(name: str, kind: MetricKind, helps: Mapping[str, str]) -> Json:
    metric: Json = {"name": name}
    if helps.get(name):
        metric["description"] = helps[name]
    if kind is MetricKind.COUNTER:
        metric["sum"] = {
            "dataPoints": [],
            "aggregationTemporality": AGGREGATION_TEMPORALITY_CUMULATIVE,
            "isMonotonic": True,
        }
    elif kind is MetricKind.GAUGE:
        metric["gauge"] = {"dataPoints": []}
    else:
        metric["histogram"] = {
            "dataPoints": [],
            "aggregationTemporality": AGGREGATION_TEMPORALITY_CUMULATIVE,
        }
    return metric


# -- protobuf (optional) -----------------------------------------------------------------------


def _protobuf_classes() -> tuple[Any, Any, Any]:
    """The generated request classes and ``json_format``, imported by name: the extra is
    optional, so neither mypy nor a plain install needs it."""
    try:
        json_format = importlib.import_module("google.protobuf.json_format")
        logs = importlib.import_module("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
        metrics = importlib.import_module(
            "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2"
        )
    except ImportError as exc:
        raise ImportError(
            "the OTLP protobuf encoding needs opentelemetry-proto: "
            "pip install 'beamwarden[otlp-proto]'"
        ) from exc
    return logs.ExportLogsServiceRequest, metrics.ExportMetricsServiceRequest, json_format


def protobuf_bytes(kind: str, message: Json) -> bytes:
    """The OTLP/JSON ``message`` as protobuf (the JSON mapping is the protobuf one)."""
    logs_cls, metrics_cls, json_format = _protobuf_classes()
    target = logs_cls() if kind == LOGS else metrics_cls()
    json_format.ParseDict(message, target)
    data: bytes = target.SerializeToString()
    return data
