"""Room: obs (stands alone). The Prometheus Pushgateway exporter: every ``interval`` seconds,
``PUT {url}/metrics/job/{job}[/{label}/{value}…]`` with the current value of every series in the
Prometheus text format (the body of ``/metrics/prometheus``).

A push replaces the whole group, so it carries state, not events: pushing again after a restart
sends the current values, never a duplicate, and there is no mark to remember. The values come
from the metric registry when there is one (its running totals), otherwise from the store's
last-value table. Label values with a ``/`` (or empty) go base64-encoded (``label@base64/…``),
as the Pushgateway's URL rules say.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from beamwarden.obs.clock import Clock
from beamwarden.obs.collector import render_prometheus
from beamwarden.obs.metrics import MetricRegistry
from beamwarden.obs.store import ObsStore

from .base import SAMPLES, BatchExporter, _log
from .cursors import CursorStore
from .sender import Outcome, Payload

#: what the Pushgateway's parser names the classic text format (newer prometheus-client
#: versions label the same body ``version=1.0.0``, which older Pushgateways do not know)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class PushgatewayExporter(BatchExporter):
    streams = frozenset[str]()

    def __init__(
        self,
        url: str,
        *,
        job: str = "beamwarden",
        grouping: Mapping[str, str] | None = None,
        interval: float = 15.0,
        name: str = "pushgateway",
        **options: Any,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval is positive")
        options.setdefault("poll_interval", min(interval, 1.0))
        super().__init__(name=name, **options)
        self.url = group_url(url, job, grouping or {})
        self.interval = interval
        self._registry: MetricRegistry | None = None
        self._next_push: float | None = None
        self.pushes = 0

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

    def payload(self) -> Payload:
        source: Any = self._registry if self._registry is not None else self.store
        body, _ = render_prometheus(source)
        return Payload(self.url, body, TEXT_FORMAT, method="PUT")

    def run_once(self, *, force: bool = False, deadline: float | None = None) -> int:
        """Push when ``interval`` has passed since the last push (or with ``force``); returns
        the number of series pushed."""
        if self.store is None:
            raise RuntimeError(f"exporter {self.name} is not bound to a store")
        now = self.clock.now()
        if not force and self._next_push is not None and now < self._next_push:
            return 0
        self._next_push = now + self.interval
        payload = self.payload()
        result = self.sender.send(payload, deadline)
        if result.outcome is Outcome.SENT:
            self._recovered()
            self.pushes += 1
            return payload.body.count(b"# TYPE ")
        if result.outcome is Outcome.GAVE_UP:
            self._failed(result)
        else:
            self.dropped[SAMPLES] += 1
            _log.warning(
                "obs exporter %s: push refused with %s: %s",
                self.name,
                result.status,
                result.detail[:200],
            )
        return 0


def _segment(label: str, value: str) -> str:
    if not value or "/" in value:
        encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
        return f"{label}@base64/{encoded}"
    return f"{label}/{quote(value, safe='')}"


def group_url(url: str, job: str, grouping: Mapping[str, str]) -> str:
    """``{url}/metrics/job/{job}/{label}/{value}…`` with each part encoded."""
    parts = [_segment("job", job), *(_segment(k, v) for k, v in grouping.items())]
    return url.rstrip("/") + "/metrics/" + "/".join(parts)
