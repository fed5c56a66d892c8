"""Room: obs (stands alone). The Loki exporter: logs through Loki's push API
(``POST {url}/loki/api/v1/push``, JSON).

Each record becomes one entry of the stream of its labels — ``service_name`` (``service``),
``level`` (``info``…) and the fixed ``labels`` given — so the label sets stay few. The line is a
JSON object ``{"logger", "message", "attrs"}`` (``| json`` in LogQL takes it apart); the time is
the record's, in nanoseconds as a string. Loki itself ignores an entry identical to one it has
(same stream, time and line), so a batch sent again after a crash is not stored twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from beamwarden.obs import _json
from beamwarden.obs.records import LogRecord

from .base import LOGS, BatchExporter, unix_nanos
from .sender import Payload

PUSH_PATH = "/loki/api/v1/push"


class LokiExporter(BatchExporter):
    streams = frozenset({LOGS})

    def __init__(
        self,
        url: str,
        *,
        name: str = "loki",
        service: str = "beamwarden",
        labels: Mapping[str, str] | None = None,
        tenant: str | None = None,
        **options: Any,
    ) -> None:
        headers = dict(options.pop("headers", None) or {})
        if tenant is not None:
            headers["X-Scope-OrgID"] = tenant
        super().__init__(name=name, headers=headers, **options)
        base = url.rstrip("/")
        self.url = base if base.endswith(PUSH_PATH) else base + PUSH_PATH
        self.labels = {"service_name": service, **(labels or {})}

    def encode_logs(self, records: Sequence[LogRecord]) -> Payload:
        return Payload(
            self.url, _json.dumps(loki_push_body(records, self.labels)), "application/json"
        )


def loki_push_body(
    records: Sequence[LogRecord], labels: Mapping[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """The push API's JSON body: one stream per level, entries in the order given."""
    streams: dict[str, list[list[str]]] = {}
    for rec in records:
        line = _json.dumps(
            {"logger": rec.logger, "message": rec.message, "attrs": dict(rec.attrs)}
        ).decode()
        streams.setdefault(rec.level.label, []).append([str(unix_nanos(rec.ts)), line])
    return {
        "streams": [
            {"stream": {**labels, "level": level}, "values": values}
            for level, values in streams.items()
        ]
    }
