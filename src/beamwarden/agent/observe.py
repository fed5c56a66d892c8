"""Room: agent (wiring). The agent's own logs and metrics, through ``beamwarden.obs``, and its local
``/health`` and ``/metrics`` endpoint on loopback, for systemd and Prometheus.

* **Logs**: ``Observability.ring()`` keeps the newest records in memory (bounded by count and
  bytes; evictions counted), installed on the root logger next to the stderr handler the journal
  reads. ``GET /logs?since=10m&level=warning`` (NDJSON) shows them without ssh'ing for the journal.
* **Metrics**: :class:`MetricsBridge` turns what the heartbeat carries (queue depth, push errors,
  drops …) into obs gauges and counters named ``pilog_*``, plus per-sensor families
  (``pilog_driver_ok{sensor}``, ``pilog_driver_readings_total{sensor}`` …). It is refreshed on
  every scrape, so a scrape is never older than the agent's state.
* **Endpoint** (``http_listen = "127.0.0.1:9105"``; off when empty; only loopback addresses are
  accepted): a small HTTP/1.1 responder on the event loop — one request per connection, 8 KiB of
  request head at most, 5 s to send it. ``/health`` answers 200 ``ok`` or ``degraded`` (a driver
  failing, pushes being retried) and 503 ``failing`` (the server refuses us, another instance
  holds the node, or readings cannot be queued), so ``curl -f`` in a systemd or container health
  check means "this agent delivers".

Touches: a loopback TCP port; the obs ring buffer (memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from beamwarden.obs import Observability
from beamwarden.obs import Request as ObsRequest
from beamwarden.obs.metrics import Counter, Gauge, MetricRegistry

log = logging.getLogger("beamwarden.agent.observe")

#: the ring buffer's bounds: the newest records, about a day of a quiet agent
RING_LOGS = 20_000
RING_LOG_BYTES = 8 << 20
#: how often the log handler's thread stores what was logged (an agent logs little; each wake-up
#: costs CPU on a node that should stay idle)
FLUSH_S = 1.0
MAX_HEAD = 8192
HEAD_TIMEOUT_S = 5.0
PREFIX = "pilog_"

Facts = Mapping[str, float | bool]


@dataclass(frozen=True, slots=True)
class SensorFacts:
    """What the endpoint reports per ``[[sensor]]``."""

    ok: bool | None
    readings_total: int
    failures_total: int
    malformed_total: int
    lost_total: int
    missed_ticks_total: int
    last_error: str | None


def agent_observability() -> Observability:
    """The agent's obs: a ring buffer for logs. Its runtime (metric snapshots, retention) is not
    started: nothing reads metric history on a node, a scrape reads the registry itself, and the
    ring bounds the logs."""
    return Observability.ring(
        max_logs=RING_LOGS, max_log_bytes=RING_LOG_BYTES, flush_interval=FLUSH_S
    )


class MetricsBridge:
    """Keeps obs metrics equal to the agent's facts. ``*_total`` facts are counters (advanced by
    what they grew since the last refresh), everything else a gauge; flags are 1 or 0."""

    def __init__(
        self,
        registry: MetricRegistry,
        facts: Callable[[], Facts],
        sensors: Callable[[], Mapping[str, SensorFacts]],
    ) -> None:
        self.registry = registry
        self.facts = facts
        self.sensors = sensors
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._seen: dict[tuple[str, str], float] = {}
        self.driver_ok = registry.gauge(
            f"{PREFIX}driver_ok", "1 while the sensor's driver reads, 0 while it fails", ["sensor"]
        )
        self.driver_counters = {
            name: registry.counter(f"{PREFIX}driver_{name}", text, ["sensor"])
            for name, text in (
                ("readings_total", "Readings the driver produced and the queue committed"),
                ("failures_total", "Failed reads or subscriptions"),
                ("malformed_total", "Input the driver could not decode (never stored)"),
                ("lost_total", "Readings lost because the queue could not be written"),
                ("missed_ticks_total", "Polls skipped because a read ran late"),
            )
        }

    def _advance(self, counter: Counter, key: tuple[str, str], total: float, **labels: str) -> None:
        grown = total - self._seen.get(key, 0.0)
        self._seen[key] = total
        series = counter.labels(**labels) if labels else counter
        if grown > 0:
            series.inc(grown)

    def refresh(self) -> None:
        for name, value in self.facts().items():
            if name.startswith("driver_") and name.endswith("_ok"):
                continue  # per sensor below, as a label rather than a name
            number = float(value)
            if name.endswith("_total"):
                counter = self._counters.get(name)
                if counter is None:
                    counter = self._counters[name] = self.registry.counter(PREFIX + name)
                self._advance(counter, (name, ""), number)
            else:
                gauge = self._gauges.get(name)
                if gauge is None:
                    gauge = self._gauges[name] = self.registry.gauge(PREFIX + name)
                gauge.set(number)
        for sensor, facts in self.sensors().items():
            self.driver_ok.labels(sensor=sensor).set(0.0 if facts.ok is False else 1.0)
            for name, counter in self.driver_counters.items():
                self._advance(counter, (name, sensor), getattr(facts, name), sensor=sensor)


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {503: "Service Unavailable", 431: "Request Header Fields Too Large"}


class LocalEndpoint:
    """``/health``, ``/metrics`` (Prometheus text), ``/logs`` and ``/logs.json`` on loopback."""

    def __init__(
        self,
        obs: Observability,
        bridge: MetricsBridge,
        health: Callable[[], tuple[bool, dict[str, Any]]],
    ) -> None:
        self.obs = obs
        self.bridge = bridge
        self.health = health
        self.server: asyncio.Server | None = None
        self.requests = 0

    def answer(self, method: str, target: str, headers: Mapping[str, str]) -> HttpAnswer:
        path, _, query = target.partition("?")
        if method not in ("GET", "HEAD"):
            return _json(405, {"error": "only GET and HEAD"}, [("allow", "GET, HEAD")])
        if path == "/health":
            serving, body = self.health()
            return _json(200 if serving else 503, body)
        if path == "/metrics":
            self.bridge.refresh()
            path = "/metrics/prometheus"
        elif path not in ("/logs", "/logs.json"):
            return _json(404, {"error": f"no endpoint {path[:100]!r}: /health, /metrics, /logs"})
        response = self.obs.endpoints.handle(ObsRequest(method, path, query, dict(headers)))
        return HttpAnswer(response.status, response.headers, b"".join(response.body))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
            except asyncio.LimitOverrunError:
                answer = _json(431, {"error": f"request head over {MAX_HEAD} bytes"})
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                return
            else:
                answer = self._answer_head(head)
            self.requests += 1
            reason = _REASONS.get(answer.status, "")
            lines = [f"HTTP/1.1 {answer.status} {reason}"]
            lines += [f"{k}: {v}" for k, v in answer.headers]
            lines += [f"content-length: {len(answer.body)}", "connection: close", "", ""]
            writer.write("\r\n".join(lines).encode("latin-1") + answer.body)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer_head(self, head: bytes) -> HttpAnswer:
        try:
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _version = request_line.split(" ")
        except ValueError:
            return _json(400, {"error": "not an HTTP request"})
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        try:
            return self.answer(method, target, headers)
        except Exception as exc:
            log.exception("local endpoint %s failed", target[:100])
            return _json(503, {"error": type(exc).__name__})

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
        log.info("local endpoint on http://%s:%d (/health, /metrics, /logs)", host, port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def _json(status: int, body: object, extra: list[tuple[str, str]] | None = None) -> HttpAnswer:
    return HttpAnswer(
        status, [("content-type", "application/json"), *(extra or [])], json.dumps(body).encode()
    )
