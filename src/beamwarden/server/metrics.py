"""Room: server (metrics; imports nothing of the server). The server's own Prometheus metrics.

One registry per app (so several apps in one process, as in tests, do not collide), exposed at
``/metrics`` through prometheus-client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


BridgeCounts = Callable[[], Mapping[str, Mapping[str, int]]]
"""A bridge's counters now: gateway kind → counter (a key of :data:`BRIDGE_COUNTERS`) → total."""

#: counter key → (metric name, help); each labelled by gateway kind
BRIDGE_COUNTERS = {
    "received": ("beamwarden_bridge_messages_received", "MQTT messages the bridge received"),
    "decoded": (
        "beamwarden_bridge_messages_decoded",
        "MQTT messages decoded into a reading or an availability",
    ),
    "stored": ("beamwarden_bridge_readings_stored", "Bridged readings stored durably"),
    "duplicates": (
        "beamwarden_bridge_readings_duplicate",
        "Copies of a reading already taken (another gateway, a repeat, or already stored)",
    ),
    "retained": (
        "beamwarden_bridge_retained_skipped",
        "Retained readings the bridge did not store (never ghost data)",
    ),
    "decode_errors": (
        "beamwarden_bridge_decode_errors",
        "MQTT messages on a gateway topic that could not be decoded",
    ),
}


class _BridgeCollector(Collector):
    """Reads the running bridges' counters at scrape time: nothing is done per message."""

    def __init__(self, sources: list[BridgeCounts]):
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        totals: dict[str, dict[str, int]] = {key: {} for key in BRIDGE_COUNTERS}
        for source in self._sources:
            for kind, counts in source().items():
                for key, value in counts.items():
                    if key in totals:
                        totals[key][kind] = totals[key].get(kind, 0) + value
        for key, (name, doc) in BRIDGE_COUNTERS.items():
            family = CounterMetricFamily(name, doc + ", by gateway kind", labels=["kind"])
            for kind, value in sorted(totals[key].items()):
                family.add_metric([kind], value)
            yield family


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._bridges: list[BridgeCounts] = []
        r.register(_BridgeCollector(self._bridges))
        self.http_requests = Counter(
            "beamwarden_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "beamwarden_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.readings_received = Counter(
            "beamwarden_readings_received",
            "Valid readings received, by sensor type (geiger, climate, system or other)",
            ["sensor_type"],
            registry=r,
        )
        self.readings_accepted = Counter(
            "beamwarden_readings_accepted", "Readings stored durably (not duplicates)", registry=r
        )
        self.readings_duplicate = Counter(
            "beamwarden_readings_duplicate", "Readings already stored (retries)", registry=r
        )
        self.readings_conflict = Counter(
            "beamwarden_readings_conflict",
            "Known reading ids that arrived with a different payload",
            registry=r,
        )
        self.readings_rejected = Counter(
            "beamwarden_readings_rejected", "Readings refused, by reason", ["reason"], registry=r
        )
        self.ingest_batches = Counter(
            "beamwarden_ingest_batches", "Accepted reading batches (requests)", registry=r
        )
        self.commit_latency = Histogram(
            "beamwarden_ingest_commit_duration_seconds",
            "Time of one group commit of readings",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_group_size = Histogram(
            "beamwarden_ingest_commit_batches",
            "Requests sharing one group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.ingest_pending = Gauge(
            "beamwarden_ingest_pending_readings", "Readings waiting for a commit", registry=r
        )
        self.heartbeats = Counter("beamwarden_heartbeats", "Heartbeats accepted", registry=r)
        self.heartbeats_dropped = Counter(
            "beamwarden_heartbeats_dropped",
            "Heartbeats dropped because the buffer was full while the database was down",
            registry=r,
        )
        self.heartbeat_buffer = Gauge(
            "beamwarden_heartbeat_buffer", "Heartbeats waiting to be written", registry=r
        )
        self.db_errors = Counter(
            "beamwarden_database_errors",
            "Database operations that failed",
            ["operation"],
            registry=r,
        )
        self.nodes_by_status = Gauge(
            "beamwarden_nodes", "Nodes by computed status", ["status"], registry=r
        )

    def watch_bridge(self, counts: BridgeCounts) -> Callable[[], None]:
        """Show a bridge's counters in ``/metrics`` (summed over the bridges watched); returns
        the function that stops showing them."""
        self._bridges.append(counts)

        def unwatch() -> None:
            if counts in self._bridges:
                self._bridges.remove(counts)

        return unwatch
