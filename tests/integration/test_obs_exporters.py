"""Integration tests of the obs exporters against a real HTTP receiver on loopback
(http.server): the exact bytes on the wire for OTLP/JSON (gzip), Loki and the Pushgateway, and a
kill -9/restart of an exporting process: nothing the receiver accepted is sent again, nothing
stored is lost."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from beamwarden.obs import ManualClock, MemoryStore, MetricRegistry, new_log_record
from beamwarden.obs.exporters import (
    HttpJsonExporter,
    LokiExporter,
    MemoryCursors,
    OtlpExporter,
    PushgatewayExporter,
    RetryPolicy,
)
from tests.conftest import Server

T0 = 1_800_000_000.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records each request; ``decide(seen)`` returns the status to answer (or blocks)."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    decide: Callable[[Seen], int] = lambda _: 200
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            seen = Seen(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            with box[0].lock:
                box[0].seen.append(seen)
            status = box[0].decide(seen)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:  # the client was killed while we held its request
                pass

        do_POST = do_PUT = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    server.shutdown()
    server.server_close()


def bound(exporter: Any, store: MemoryStore, clock: ManualClock, registry: Any = None) -> Any:
    exporter.bind(store, cursors=MemoryCursors(), registry=registry, clock=clock)
    return exporter


def test_otlp_json_on_the_wire_gzip(receiver: Receiver) -> None:
    clock, store = ManualClock(T0 + 5), MemoryStore()
    store.append_logs(
        [new_log_record("error", "disk full", ts=T0, logger="store", attrs={"free_mb": 0})]
    )
    exporter = bound(
        OtlpExporter(
            receiver.url + "/v1/logs",  # a signal path given is taken off again
            service_name="station",
            compression="gzip",
            headers={"Authorization": "Bearer abc"},
            max_delay=0,
            metrics=False,
        ),
        store,
        clock,
    )
    assert exporter.run_once() == 1
    exporter.close()
    (seen,) = receiver.seen
    assert (seen.method, seen.path) == ("POST", "/v1/logs")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["content-encoding"] == "gzip"
    assert seen.headers["authorization"] == "Bearer abc"
    assert json.loads(gzip.decompress(seen.body)) == {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "station"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "store"},
                        "logRecords": [
                            {
                                "timeUnixNano": "1800000000000000000",
                                "observedTimeUnixNano": "1800000005000000000",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {"stringValue": "disk full"},
                                "attributes": [{"key": "free_mb", "value": {"intValue": "0"}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_loki_and_pushgateway_on_the_wire(receiver: Receiver) -> None:
    clock, store = ManualClock(T0), MemoryStore()
    registry = MetricRegistry(clock=clock)
    registry.gauge("battery_volts", "Battery voltage", labels=("node",)).labels(node="a").set(3.7)
    store.append_logs([new_log_record("info", "up", ts=T0, logger="station")])
    loki = bound(LokiExporter(receiver.url, max_delay=0), store, clock)
    gateway = bound(PushgatewayExporter(receiver.url, job="station"), store, clock, registry)
    assert loki.run_once() == 1
    assert gateway.run_once() == 4  # battery_volts and the exporters' own three families
    loki.close()
    gateway.close()
    push, put = receiver.seen[0], receiver.seen[1]
    assert (push.method, push.path) == ("POST", "/loki/api/v1/push")
    assert json.loads(push.body) == {
        "streams": [
            {
                "stream": {"service_name": "beamwarden", "level": "info"},
                "values": [
                    ["1800000000000000000", '{"logger":"station","message":"up","attrs":{}}']
                ],
            }
        ]
    }
    assert (put.method, put.path) == ("PUT", "/metrics/job/station")
    assert put.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert put.body.startswith(
        b"# HELP battery_volts Battery voltage\n"
        b"# TYPE battery_volts gauge\n"
        b'battery_volts{node="a"} 3.7\n'
    )
    # the close() of the Pushgateway exporter pushed once more: state, not a duplicate event
    assert [s.path for s in receiver.seen[2:]] == ["/metrics/job/station"]


def test_a_receiver_that_is_down_then_up(receiver: Receiver) -> None:
    clock, store = ManualClock(T0), MemoryStore()
    statuses = iter([503, 503])
    receiver.decide = lambda _: next(statuses, 200)
    store.append_logs([new_log_record("info", "x", ts=T0)])
    exporter = bound(
        OtlpExporter(
            receiver.url,
            max_delay=0,
            retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.02, jitter=0, deadline=5),
        ),
        store,
        clock,
    )
    assert exporter.run_once() == 1
    exporter.close()
    assert [s.path for s in receiver.seen] == ["/v1/logs"] * 3


CHILD = """
import sys
from beamwarden.obs import Observability, new_log_record
from beamwarden.obs.exporters import HttpJsonExporter, RetryPolicy

path, url, fill = sys.argv[1], sys.argv[2], sys.argv[3] == "fill"
obs = Observability.sqlite(path)
if fill:
    obs.store.append_logs(
        [new_log_record("info", f"record {i}", ts=1_800_000_000.0 + i) for i in range(100)]
    )
exporter = HttpJsonExporter(
    url, metrics=False, batch_size=10, max_delay=0, poll_interval=0.02,
    retry=RetryPolicy(initial_backoff=0.05, max_backoff=0.2, jitter=0, deadline=30),
)
obs.add_exporter(exporter)
obs.start()
print("started", flush=True)
sys.stdin.read()  # until the parent closes stdin (or kills us)
obs.close()
"""


def run_child(path: Path, url: str, fill: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), url, "fill" if fill else "resume"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    return child


@pytest.mark.slow
def test_kill_9_and_restart_resend_nothing_accepted_and_lose_nothing(
    receiver: Receiver, tmp_path: Path
) -> None:
    held = threading.Event()
    release = threading.Event()
    accepted: list[int] = []

    def decide(seen: Seen) -> int:
        batch = json.loads(seen.body)
        if len(accepted) == 30 and not release.is_set():  # the 4th batch: held, never answered
            held.set()
            release.wait(30)
            return 503
        accepted.extend(item["id"] for item in batch["items"])
        return 200

    receiver.decide = decide
    url = receiver.url + "/ingest"
    first = run_child(tmp_path / "obs.db", url, fill=True)
    assert held.wait(30), "the fourth batch never arrived"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    for pipe in (first.stdin, first.stdout):
        assert pipe is not None
        pipe.close()
    release.set()

    second = run_child(tmp_path / "obs.db", url, fill=False)
    try:
        deadline = threading.Event()
        for _ in range(600):  # up to 30 s, polling the receiver's state
            if len(accepted) >= 100:
                break
            deadline.wait(0.05)
    finally:
        assert second.stdin is not None
        second.stdin.close()
        assert second.wait(30) == 0
        assert second.stdout is not None
        second.stdout.close()
    assert accepted == list(range(1, 101))  # each record accepted once, in order
    first_ids = [json.loads(s.body)["first_id"] for s in receiver.seen]
    assert first_ids == [1, 11, 21, 31, 31, 41, 51, 61, 71, 81, 91]  # 31 held, then resent


# -- the server's own obs, exported ------------------------------------------------------------


@pytest.fixture
def settings_overrides(receiver: Receiver, tmp_path: Path) -> dict[str, Any]:
    return {
        "obs_store": "sqlite",
        "obs_path": tmp_path / "obs.db",
        "obs_export_http_url": receiver.url + "/ingest",
        "obs_request_metrics": True,
    }


async def test_the_server_exports_its_own_logs_and_counts_its_requests(
    server: Server, receiver: Receiver
) -> None:
    assert (await server.client.get("/api/health/live")).status_code == 200
    obs = server.app.state.obs
    obs.flush()
    (exporter,) = obs.exporters
    assert isinstance(exporter, HttpJsonExporter)
    await asyncio.to_thread(exporter.run_once, force=True)
    logs = [
        item["message"]
        for seen in receiver.seen
        if seen.path == "/ingest" and json.loads(seen.body)["stream"] == "logs"
        for item in json.loads(seen.body)["items"]
    ]
    assert any("serving on" in message for message in logs)
    r = await server.client.get("/obs/metrics.json")
    counted = {
        (item["labels"]["route"], item["labels"]["status"]): item["value"]
        for item in r.json()["items"]
        if item["name"] == "http_requests_total"
    }
    assert counted[("/api/health/live", "200")] == 1.0
