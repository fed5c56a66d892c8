"""Integration tests of the ``obs`` command line: ``query`` on a SQLite file, ``tail`` and
``metrics`` against the WSGI endpoints served on a loopback port (a thread, stopped after)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from typer.testing import CliRunner

from beamwarden.obs import (
    Level,
    MemoryStore,
    MetricRegistry,
    ObsEndpoints,
    ObsWsgiApp,
    SqliteStore,
    new_log_record,
)
from beamwarden.obs.cli import app, format_log_line

T0 = 1_800_000_000.0
runner = CliRunner()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served() -> Iterator[tuple[str, MemoryStore, MetricRegistry]]:
    store = MemoryStore()
    store.append_logs(
        [
            new_log_record(level, f"{level.label} {i}", ts=T0 + i, logger="app", attrs={"i": i})
            for i, level in enumerate(Level)
        ]
    )
    registry = MetricRegistry()
    registry.counter("jobs_total", "Jobs", labels=("kind",)).labels(kind="a").inc(3)
    registry.histogram("lat_seconds", buckets=[1]).observe(0.5)
    server = make_server(
        "127.0.0.1",
        0,
        ObsWsgiApp(ObsEndpoints(store, registry=registry)),
        handler_class=QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", store, registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_tail_prints_lines_filtered_by_level(
    served: tuple[str, MemoryStore, MetricRegistry],
) -> None:
    url, _, _ = served
    result = runner.invoke(app, ["tail", url, "--level", "error", "--since", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "2027-01-15T08:00:03.000Z ERROR    app: error 3  i=3",
        "2027-01-15T08:00:04.000Z CRITICAL app: critical 4  i=4",
    ]


def test_tail_follow_asks_for_what_came_after_the_cursor(
    served: tuple[str, MemoryStore, MetricRegistry],
) -> None:
    url, store, _ = served
    from beamwarden.obs import cli

    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        store.append_logs([new_log_record("info", f"new {len(polls)}", ts=T0 + 100)])

    import httpx

    with httpx.Client() as client:
        seen = [
            item["message"]
            for item in cli.follow_logs(
                client, url, {"since": "0"}, follow=True, interval=0.5, polls=3, sleep=sleep
            )
        ]
    assert seen == ["debug 0", "info 1", "warning 2", "error 3", "critical 4", "new 1", "new 2"]
    assert polls == [0.5, 0.5]


def test_tail_reports_bad_parameters_and_unreachable_urls(
    served: tuple[str, MemoryStore, MetricRegistry],
) -> None:
    url, _, _ = served
    bad = runner.invoke(app, ["tail", url, "--level", "loud"])
    assert bad.exit_code == 1
    assert "400" in bad.output
    assert "unknown level" in bad.output
    down = runner.invoke(app, ["tail", "http://127.0.0.1:9/"])
    assert down.exit_code == 1
    assert "cannot read" in down.output


def test_metrics_table_and_json(served: tuple[str, MemoryStore, MetricRegistry]) -> None:
    url, _, _ = served
    as_json = runner.invoke(app, ["metrics", url, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    items = [json.loads(line) for line in as_json.output.splitlines()]
    assert [
        (i["name"], i["value"] if i["kind"] != "histogram" else i["value"]["counts"]) for i in items
    ] == [
        ("jobs_total", 3.0),
        ("lat_seconds", [1, 1]),
    ]
    table = runner.invoke(app, ["metrics", url])
    assert table.exit_code == 0
    assert 'kind="a"' in table.output
    assert "count=1 sum=0.5" in table.output


def test_query_reads_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "obs.db"
    store = SqliteStore(path)
    store.append_logs(
        [
            new_log_record(level, f"{level.label} message", ts=T0 + i, logger="app")
            for i, level in enumerate(Level)
        ]
    )
    store.close()
    result = runner.invoke(
        app, ["query", str(path), "--level", "warning", "--format", "json", "--limit", "2"]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["message"] for line in result.output.splitlines()] == [
        "warning message",
        "error message",
    ]
    table = runner.invoke(app, ["query", str(path), "--since", str(T0 + 4)])
    assert table.exit_code == 0
    assert "critical message" in table.output
    assert "error message" not in table.output
    assert runner.invoke(app, ["query", str(tmp_path / "nope.db")]).exit_code == 1
    bad = runner.invoke(app, ["query", str(path), "--since", "whenever"])
    assert bad.exit_code == 2
    assert "since" in bad.output


def test_log_lines_show_attributes_and_exceptions() -> None:
    line = format_log_line(
        {
            "ts": T0,
            "level": "error",
            "logger": "app",
            "message": "boom",
            "attrs": {"n": 1, "exception": "Traceback\n  x\n"},
        }
    )
    assert line == "2027-01-15T08:00:00.000Z ERROR    app: boom  n=1\nTraceback\n  x"
