"""Room: obs (stands alone). The generic HTTP JSON exporter: each batch is one ``POST`` of

::

    {"source": "beamwarden", "stream": "logs", "first_id": 41, "last_id": 80,
     "items": [{"id": 41, "ts": 1795354240.5, "level": "info", "logger": "...", "message": "...",
                "attrs": {...}}, ...]}

(``"stream": "samples"`` items are ``{"id", "ts", "name", "kind", "labels", "value"}``, a
histogram's value ``{"bounds", "counts", "sum"}``: the shapes of ``/logs`` and ``/metrics``).
``first_id``/``last_id`` let a receiver recognise a batch sent again after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from beamwarden.obs import _json
from beamwarden.obs.records import LogRecord, MetricSample

from .base import LOGS, SAMPLES, BatchExporter
from .sender import Payload


class HttpJsonExporter(BatchExporter):
    def __init__(
        self,
        url: str,
        *,
        name: str = "http",
        source: str = "beamwarden",
        logs: bool = True,
        metrics: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(name=name, **options)
        self.url = url
        self.source = source
        self.streams = frozenset(s for s, on in ((LOGS, logs), (SAMPLES, metrics)) if on)

    def _payload(self, stream: str, items: Sequence[LogRecord] | Sequence[MetricSample]) -> Payload:
        body = {
            "source": self.source,
            "stream": stream,
            "first_id": items[0].id if items else None,
            "last_id": items[-1].id if items else None,
            "items": [item.as_json() for item in items],
        }
        return Payload(self.url, _json.dumps(body), "application/json")

    def encode_logs(self, records: Sequence[LogRecord]) -> Payload:
        return self._payload(LOGS, records)

    def encode_samples(self, samples: Sequence[MetricSample]) -> Payload:
        return self._payload(SAMPLES, samples)
