"""Per-stream retention through the app (issue 7), on SQLite and PostgreSQL with the fake clock:
the policy of the settings (raw readings 30 days, Geiger counters 90 by an override) applied by
the sweeper under its lease; a series over the forgotten month still answers, from the rollups;
``GET|PUT /api/retention`` shows and replaces the policy (400 naming the key)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from beamwarden.protocol import Scope
from beamwarden.server.app import create_app
from beamwarden.server.records import to_us
from beamwarden.server.services.retention import LeasedJob
from beamwarden.server.settings import ServerSettings
from tests.conftest import START, Server, auth

DAY = 86_400.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "alert_interval_s": 3600,
        "retention_overrides": [{"sensor_type": "geiger", "raw_days": 90}],
    }


def reading(sensor: str, seconds: int) -> dict[str, Any]:
    kind, field = ("geiger", "cps") if sensor == "geiger" else ("climate", "temperature_c")
    return {
        "node_id": "node-1",
        "sensor_type": kind,
        "sensor_id": sensor,
        "payload": {field: float(seconds % 50)},
        "timestamp": (START + timedelta(seconds=seconds)).isoformat(),
    }


async def series(server: Server, reader: str, sensor: str, field: str) -> list[dict[str, Any]]:
    since, until = START.isoformat(), (START + timedelta(hours=1)).isoformat()
    r = await server.client.get(
        "/api/series",
        params={
            "node_id": "node-1",
            "sensor_id": sensor,
            "field": field,
            "since": since,
            "until": until,
            "bucket": "60s",
            "agg": "count,min,max",
        },
        headers=auth(reader),
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_raw_readings_go_per_stream_and_series_keep_answering(server: Server) -> None:
    token, reader = await server.node(), await server.user()
    items = [reading(s, t) for s in ("bme280", "geiger") for t in range(0, 3600, 10)]
    r = await server.client.post("/api/readings", json=items, headers=auth(token))
    assert r.status_code == 200, r.text
    server.clock.advance(2 * 3600)
    while await server.services.store.roll_up(to_us(server.clock.now())):  # type: ignore[attr-defined]
        pass
    before = await series(server, reader, "bme280", "temperature_c")
    assert len(before) == 60
    assert all(b["count"] == 6 for b in before)
    server.clock.advance(32 * DAY)
    jobs: dict[str, LeasedJob] = server.app.state.jobs
    assert await jobs["sweeper:readings"].tick()
    r = await server.client.get(
        "/api/readings", params={"node_id": "node-1", "limit": 1000}, headers=auth(reader)
    )
    left = {item["sensor_id"] for item in r.json()["items"]}
    assert left == {"geiger"}  # kept 90 days by the override
    assert await series(server, reader, "bme280", "temperature_c") == before  # from rollups
    r = await server.client.get(
        "/api/retention", params={"node_id": "node-1"}, headers=auth(reader)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "settings"
    assert body["policy"]["overrides"][0]["raw_days"] == 90
    streams = {s["sensor_id"]: s for s in body["streams"]}
    assert (streams["bme280"]["raw_days"], streams["geiger"]["raw_days"]) == (30, 90)
    assert streams["bme280"]["minute_days"] == 365
    gone = {k: datetime.fromisoformat(v["raw_gone_before"]) for k, v in streams.items()}
    assert gone["geiger"] < START < gone["bme280"]  # 90 days ago; 30 days ago (to the hour)


async def test_the_policy_is_replaced_through_the_api_and_checked(server: Server) -> None:
    admin, reader = await server.user(Scope.ADMIN), await server.user()
    bad = {"overrides": [{"node": "n1", "raw_days": 7}, {"sensor_id": "x", "raw_days": -1}]}
    r = await server.client.put("/api/retention", json=bad, headers=auth(admin))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_retention"
    assert r.json()["error"]["message"] == (
        "overrides[1]: raw_days: Input should be greater than or equal to 0"
    )
    r = await server.client.put("/api/retention", json={"overrides": [{}]}, headers=auth(admin))
    assert r.status_code == 400
    assert "overrides[0]: an override names node, sensor_type or sensor_id" in r.text
    r = await server.client.put("/api/retention", json={"raw_days": 7}, headers=auth(reader))
    assert r.status_code == 403
    good = {"raw_days": 7, "overrides": [{"node": ["lab-1"], "raw_days": 0, "hour_days": 3650}]}
    r = await server.client.put("/api/retention", json=good, headers=auth(admin))
    assert r.status_code == 200, r.text
    r = await server.client.get("/api/retention", headers=auth(reader))
    policy = r.json()["policy"]
    assert r.json()["source"] == "api"
    assert (policy["raw_days"], policy["minute_days"], policy["hour_days"]) == (7, 365, 0)
    assert policy["overrides"][0]["node"] == ["lab-1"]
    events = await server.client.get(
        "/api/events", params={"kind": "retention_changed"}, headers=auth(admin)
    )
    assert next(e["actor"] for e in events.json()["items"]).startswith("user:")


async def test_a_restart_keeps_the_api_policy_until_the_settings_change(
    server: Server, database_url: str, settings_overrides: dict[str, Any]
) -> None:
    admin = await server.user(Scope.ADMIN)
    r = await server.client.put("/api/retention", json={"raw_days": 7}, headers=auth(admin))
    assert r.status_code == 200, r.text

    async def source_after_start(**changes: Any) -> tuple[str, float]:
        settings = ServerSettings(
            database_url=database_url,
            log_format="text",
            gc_freeze=False,
            **{**settings_overrides, **changes},
        )
        app = create_app(settings, clock=server.clock)
        async with app.router.lifespan_context(app):
            policy, source = await app.state.retention.current()
            return source, policy.raw_days

    assert await source_after_start() == ("api", 7)
    assert await source_after_start(readings_retention_days=60) == ("settings", 60)
