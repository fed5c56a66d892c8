"""Room: obs (stands alone). Exporters: ship what an obs store holds to other systems, in
batches, with retries, remembering across restarts what the receiver already accepted.

* :class:`OtlpExporter` — OTLP over HTTP (``/v1/logs``, ``/v1/metrics``), JSON by default,
  protobuf with the ``otlp-proto`` extra;
* :class:`LokiExporter` — logs to Loki's push API;
* :class:`PushgatewayExporter` — the current metric values to a Prometheus Pushgateway;
* :class:`HttpJsonExporter` — batches of records and samples as plain JSON to any URL.

``obs.add_exporter(OtlpExporter("http://collector:4318"))`` binds one to an
:class:`~beamwarden.obs.Observability` (its store, registry, clock, and marks kept next to the
store); ``obs.close()`` sends what is left. See ``docs/obs.md`` ("Exporters").
"""

from .base import BatchExporter, Exporter
from .cursors import CursorStore, FileCursors, MemoryCursors, SqliteCursors
from .http_json import HttpJsonExporter
from .loki import LokiExporter
from .otlp import OtlpExporter
from .pushgateway import PushgatewayExporter
from .retry import RETRYABLE_STATUS, RetryPolicy
from .sender import Outcome, Payload, SendResult

__all__ = [
    "RETRYABLE_STATUS",
    "BatchExporter",
    "CursorStore",
    "Exporter",
    "FileCursors",
    "HttpJsonExporter",
    "LokiExporter",
    "MemoryCursors",
    "OtlpExporter",
    "Outcome",
    "Payload",
    "PushgatewayExporter",
    "RetryPolicy",
    "SendResult",
    "SqliteCursors",
]
