"""The agent's obs wiring: facts become pilog_* gauges and counters (counters advance by what the
totals grew), per-sensor families carry a label, the endpoint routes /health, /metrics and /logs
and answers 404/405 plainly; http_listen takes only loopback addresses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from beamwarden.agent.config import loopback_address, parse_config
from beamwarden.agent.errors import ConfigError
from beamwarden.agent.observe import (
    LocalEndpoint,
    MetricsBridge,
    SensorFacts,
    agent_observability,
)


def sensor(**over: Any) -> SensorFacts:
    facts: dict[str, Any] = {
        "ok": True,
        "readings_total": 10,
        "failures_total": 0,
        "malformed_total": 2,
        "lost_total": 0,
        "missed_ticks_total": 0,
        "last_error": None,
    }
    facts.update(over)
    return SensorFacts(**facts)


def test_facts_become_gauges_and_counters_that_follow_the_totals() -> None:
    obs = agent_observability()
    facts: dict[str, float | bool] = {
        "queue_depth": 7,
        "push_ok": True,
        "push_errors_total": 3,
        "driver_geiger_0_ok": True,
    }
    sensors = {"geiger-0": sensor()}
    bridge = MetricsBridge(obs.registry, lambda: facts, lambda: sensors)
    endpoint = LocalEndpoint(obs, bridge, lambda: (True, {"status": "ok"}))
    bridge.refresh()
    facts.update(queue_depth=2, push_errors_total=5, push_ok=False)
    sensors["geiger-0"] = sensor(ok=False, readings_total=15)
    text = endpoint.answer("GET", "/metrics", {}).body.decode()
    lines = {line for line in text.splitlines() if not line.startswith("#")}
    assert {
        "pilog_queue_depth 2.0",
        "pilog_push_ok 0.0",
        "pilog_push_errors_total 5.0",
        'pilog_driver_ok{sensor="geiger-0"} 0.0',
        'pilog_driver_readings_total{sensor="geiger-0"} 15.0',
        'pilog_driver_malformed_total{sensor="geiger-0"} 2.0',
    } <= lines
    assert "# TYPE pilog_push_errors_total counter" in text
    assert "driver_geiger_0_ok" not in text  # a label, not a name
    obs.close()


def test_the_endpoint_routes_health_logs_and_refuses_the_rest() -> None:
    obs = agent_observability()
    obs.install("beamwarden.test-observe")
    bridge = MetricsBridge(obs.registry, dict, dict)
    healthy = [True]
    endpoint = LocalEndpoint(obs, bridge, lambda: (healthy[0], {"status": "x"}))
    assert endpoint.answer("GET", "/health", {}).status == 200
    healthy[0] = False
    assert endpoint.answer("GET", "/health", {}).status == 503
    logging.getLogger("beamwarden.test-observe").warning("a driver fails")
    obs.flush()
    logs = endpoint.answer("GET", "/logs?level=warning", {})
    assert (logs.status, b"a driver fails" in logs.body) == (200, True)
    assert endpoint.answer("GET", "/nope", {}).status == 404
    answer = endpoint.answer("POST", "/health", {})
    assert (answer.status, ("allow", "GET, HEAD") in answer.headers) == (405, True)
    assert endpoint.answer("GET", "/logs?bad=1", {}).status == 400
    obs.close()


def test_http_listen_is_loopback_only(tmp_path: Path) -> None:
    assert loopback_address("127.0.0.1:9105") == ("127.0.0.1", 9105)
    assert loopback_address("[::1]:9105") == ("::1", 9105)
    assert loopback_address("localhost:80") == ("127.0.0.1", 80)
    for bad in ("0.0.0.0:9105", "192.168.1.2:9105", "127.0.0.1", "127.0.0.1:0", "x:1"):
        assert loopback_address(bad) is None, bad
    base = {
        "device_id": "n-1",
        "api_url": "http://bw",
        "device_token": "bwn_token123",
        "state_dir": str(tmp_path),
    }
    assert parse_config(base).http_listen is None
    assert parse_config({**base, "http_listen": "127.0.0.1:9105"}).http_listen == (
        "127.0.0.1",
        9105,
    )
    with pytest.raises(ConfigError) as caught:
        parse_config({**base, "http_listen": "0.0.0.0:9105"})
    assert caught.value.problems == [
        "http_listen: '0.0.0.0:9105' is not a loopback host:port "
        '(e.g. "127.0.0.1:9105" or "[::1]:9105"; empty turns it off)'
    ]
