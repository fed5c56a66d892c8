"""Issue 7 end to end, on SQLite and PostgreSQL with the fake clock: readings in through the API,
the evaluator's cycles (``AlertService.step``), notifications out through apprise to a webhook
receiver on loopback that records what it is sent.

* a value crossing the threshold every sample for 10 minutes notifies exactly once (hysteresis);
* a restart (a new app on the same database) neither re-fires nor forgets;
* a silence mutes, and the alert is told once the silence ends.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from beamwarden.protocol import Scope
from beamwarden.server.app import create_app
from beamwarden.server.services.alerts import AlertService
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.settings import ServerSettings
from tests.conftest import START, Server, auth

RULES = {
    "rules": [
        {
            "name": "attic-too-warm",
            "kind": "threshold",
            "field": "temperature_c",
            "above": 30.0,
            "clear_below": 25.0,
            "scope": {"sensor_type": ["climate"]},
        }
    ]
}


class Receiver:
    """A webhook receiver on loopback (http.server in a thread): records every JSON body."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/alerts"

    def messages(self) -> list[str]:
        return [f"{m.get('title', '')}\n{m.get('message', '')}" for m in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.httpd.shutdown()
        r.httpd.server_close()


@pytest.fixture
def settings_overrides(receiver: Receiver) -> dict[str, Any]:
    # the background loop waits an hour before its first cycle: the tests step by hand
    return {
        "notify_urls": {"hook": receiver.url},
        "alert_interval_s": 3600,
        "alert_settle_s": 5,
        "notify_link_base": "https://bw.example",
    }


def alerts_of(server: Server) -> AlertService:
    alerts: AlertService = server.app.state.alerting.alerts
    return alerts


def reading(value: float, seconds: float, node: str = "node-1") -> dict[str, Any]:
    return {
        "node_id": node,
        "sensor_type": "climate",
        "sensor_id": "bme280@0x76",
        "payload": {"temperature_c": value},
        "timestamp": (START + timedelta(seconds=seconds)).isoformat(),
    }


async def put_rules(server: Server, admin: str, rules: dict[str, Any] = RULES) -> None:
    r = await server.client.put("/api/alert-rules", json=rules, headers=auth(admin))
    assert r.status_code == 200, r.text


async def push(server: Server, token: str, items: list[dict[str, Any]]) -> None:
    r = await server.client.post("/api/readings", json=items, headers=auth(token))
    assert r.status_code == 200, r.text


async def flap(
    server: Server, token: str, start_s: int, seconds: int, high: float, low: float
) -> None:
    """One reading per second, alternating ``high`` and ``low``, sent every 30 s, each batch
    followed by one evaluator cycle 30 s later."""
    alerts = alerts_of(server)
    for batch in range(start_s, start_s + seconds, 30):
        items = [reading(high if s % 2 == 0 else low, s) for s in range(batch, batch + 30)]
        server.clock.set(START + timedelta(seconds=batch + 30))
        await push(server, token, items)
        server.clock.advance(30)
        await alerts.step()


async def events_of(server: Server, reader: str, kind: str) -> list[dict[str, Any]]:
    r = await server.client.get(f"/api/events?kind={kind}&limit=1000", headers=auth(reader))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_a_flapping_value_notifies_exactly_once_with_hysteresis(
    server: Server, receiver: Receiver
) -> None:
    token, admin = await server.node(), await server.user(Scope.ADMIN)
    await put_rules(server, admin)
    await flap(server, token, 0, 600, high=31.0, low=29.0)  # 10 minutes: 600 crossings of 30
    assert len(receiver.received) == 1
    title, body = receiver.messages()[0].split("\n", 1)
    assert title == "[FIRING] attic-too-warm: node-1/bme280@0x76/temperature_c"
    assert "node: node-1, sensor bme280@0x76 field temperature_c" in body
    assert "value: 31 (threshold 30)" in body
    assert "https://bw.example/nodes/node-1" in body
    assert [e["data"]["rule"] for e in await events_of(server, admin, "alert_firing")] == [
        "attic-too-warm"
    ]
    firing = (await server.client.get("/api/alerts", headers=auth(admin))).json()["items"]
    assert [(a["rule"], a["node_id"], a["field"], a["silenced"]) for a in firing] == [
        ("attic-too-warm", "node-1", "temperature_c", False)
    ]
    sent = (await server.client.get("/api/notifications", headers=auth(admin))).json()["items"]
    assert [(n["channel"], n["kind"], n["status"], n["attempts"]) for n in sent] == [
        ("hook", "firing", "sent", 1)
    ]


async def test_without_hysteresis_the_same_input_fires_every_other_sample(
    server: Server, receiver: Receiver
) -> None:
    """The control: the same input, no clearing line below the threshold."""
    token, admin = await server.node(), await server.user(Scope.ADMIN)
    rule = {k: v for k, v in RULES["rules"][0].items() if k != "clear_below"}
    await put_rules(server, admin, {"rules": [rule]})
    await flap(server, token, 0, 60, high=31.0, low=29.0)
    fired = await events_of(server, admin, "alert_firing")
    assert len(fired) == 30  # every high sample fires again


@contextlib.asynccontextmanager
async def running(url: str, clock: FakeClock, overrides: dict[str, Any]) -> AsyncIterator[Server]:
    settings = ServerSettings(database_url=url, log_format="text", gc_freeze=False, **overrides)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Server(app, client, clock, "")


async def test_a_restart_neither_refires_nor_forgets(
    database_url: str, clock: FakeClock, receiver: Receiver, settings_overrides: dict[str, Any]
) -> None:
    async with running(database_url, clock, settings_overrides) as first:
        token, admin = await first.node(), await first.user(Scope.ADMIN)
        await put_rules(first, admin)
        await flap(first, token, 0, 120, high=31.0, low=29.0)
        assert len(receiver.received) == 1
    async with running(database_url, clock, settings_overrides) as second:
        firing = (await second.client.get("/api/alerts", headers=auth(admin))).json()["items"]
        assert [a["rule"] for a in firing] == ["attic-too-warm"]  # not forgotten
        await flap(second, token, 120, 120, high=31.0, low=29.0)
        assert len(receiver.received) == 1  # not re-fired
        await flap(second, token, 240, 60, high=20.0, low=21.0)
        assert len(receiver.received) == 2
        assert receiver.messages()[1].startswith("[RESOLVED] attic-too-warm")
        assert (await second.client.get("/api/alerts", headers=auth(admin))).json()["items"] == []


async def test_a_silence_mutes_and_the_alert_is_told_when_it_ends(
    server: Server, receiver: Receiver
) -> None:
    token, admin = await server.node(), await server.user(Scope.ADMIN)
    await put_rules(server, admin)
    r = await server.client.post(
        "/api/silences",
        json={"rules": ["attic-too-warm"], "duration": "2m", "comment": "fixing the fan"},
        headers=auth(admin),
    )
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["ends"] == "2026-11-22T12:02:00Z"
    await flap(server, token, 0, 60, high=31.0, low=29.0)  # cycles at 60 s and 90 s
    assert receiver.received == []
    fired = await events_of(server, admin, "alert_firing")
    assert [e["data"]["silenced"] for e in fired] == [True]
    firing = (await server.client.get("/api/alerts", headers=auth(admin))).json()["items"]
    assert [a["silenced"] for a in firing] == [True]
    await flap(server, token, 60, 60, high=31.0, low=29.0)  # the silence ends at 120 s
    assert len(receiver.received) == 1
    assert receiver.messages()[0].startswith("[STILL FIRING] attic-too-warm")


async def test_a_deleted_silence_stops_muting(server: Server, receiver: Receiver) -> None:
    token, admin = await server.node(), await server.user(Scope.ADMIN)
    await put_rules(server, admin)
    r = await server.client.post("/api/silences", json={"duration": "1h"}, headers=auth(admin))
    silence_id = r.json()["id"]
    r = await server.client.delete(f"/api/silences/{silence_id}", headers=auth(admin))
    assert r.status_code == 200, r.text
    assert r.json()["deleted_at"] == "2026-11-22T12:00:00Z"
    assert (await server.client.get("/api/silences", headers=auth(admin))).json()["items"] == []
    r = await server.client.delete(f"/api/silences/{silence_id}", headers=auth(admin))
    assert r.status_code == 404
    await flap(server, token, 0, 30, high=31.0, low=29.0)
    assert len(receiver.received) == 1


async def test_a_failed_send_is_retried_with_backoff_and_recorded(
    server: Server, receiver: Receiver
) -> None:
    token, admin = await server.node(), await server.user(Scope.ADMIN)
    await put_rules(server, admin)
    receiver.fail_next = 1
    await flap(server, token, 0, 30, high=31.0, low=29.0)
    sent = (await server.client.get("/api/notifications", headers=auth(admin))).json()["items"]
    assert [(n["status"], n["attempts"]) for n in sent] == [("pending", 1)]
    assert sent[0]["error"]
    assert sent[0]["next_attempt_at"] == "2026-11-22T12:01:30Z"  # 30 s after the first attempt
    server.clock.advance(30)
    await alerts_of(server).notifications.deliver_due()
    sent = (await server.client.get("/api/notifications", headers=auth(admin))).json()["items"]
    assert [(n["status"], n["attempts"]) for n in sent] == [("sent", 2)]
    assert len(receiver.received) == 1


async def test_rules_are_validated_naming_the_rule_and_key(server: Server) -> None:
    admin, reader = await server.user(Scope.ADMIN), await server.user(Scope.READ)
    bad = {"rules": [{"name": "hot", "kind": "threshold", "field": "t", "above": "warm"}]}
    r = await server.client.put("/api/alert-rules", json=bad, headers=auth(admin))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_rules"
    assert error["message"].startswith("rule 'hot' (rules[0]): above:")
    r = await server.client.put("/api/alert-rules", json=RULES, headers=auth(reader))
    assert r.status_code == 403
    got = (await server.client.get("/api/alert-rules", headers=auth(reader))).json()
    assert got == {"document": {}, "source": "none", "rules": ["node-offline"]}


async def test_a_node_going_offline_and_back_notifies(server: Server, receiver: Receiver) -> None:
    token = await server.node()
    beat = {
        "node_id": "node-1",
        "role": "pi-log",
        "timestamp": START.isoformat(),
        "uptime_seconds": 1.0,
        "software_version": "2.0.1",
        "ip_address": "192.168.1.20",
        "interval_seconds": 30,
    }
    r = await server.client.post("/api/telemetry", json=beat, headers=auth(token))
    assert r.status_code == 202, r.text
    alerts = alerts_of(server)
    await alerts.step()
    server.clock.advance(200)  # 5 intervals and more: offline
    await alerts.step()
    assert receiver.messages()[0].startswith(
        "[FIRING] node-offline: node-1\nnode node-1 is offline"
    )
    beat["timestamp"] = server.clock.now().isoformat()
    await server.client.post("/api/telemetry", json=beat, headers=auth(token))
    await alerts.step()
    assert len(receiver.received) == 2
    assert "node node-1 is back online" in receiver.messages()[1]


async def test_send_test_reaches_every_channel(server: Server, receiver: Receiver) -> None:
    admin = await server.user(Scope.ADMIN)
    r = await server.client.post("/api/notifications/test", json={}, headers=auth(admin))
    assert r.status_code == 200, r.text
    assert r.json() == {"results": {"hook": None}}
    assert receiver.received[0]["title"] == "Beamwarden test notification"
    r = await server.client.post(
        "/api/notifications/test", json={"channel": "nope"}, headers=auth(admin)
    )
    assert r.status_code == 404
    reader = await server.user(Scope.READ)
    r = await server.client.post("/api/notifications/test", json={}, headers=auth(reader))
    assert r.status_code == 403


async def test_geiger_summary_over_stored_readings(server: Server) -> None:
    token, reader = await server.node(), await server.user(Scope.READ)
    items = [
        {
            "node_id": "node-1",
            "timestamp": (START - timedelta(seconds=s)).isoformat(),
            "cps": c,
            "cpm": c * 60,
        }
        for s, c in ((30, 10), (120, 20))
    ]
    await push(server, token, items)
    r = await server.client.get(
        "/api/geiger/summary?node_id=node-1&window=60s&tube=SBM-20&confidence=0.95",
        headers=auth(reader),
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["stats"]["count"], got["stats"]["mean"], got["cpm"]) == (1, 10.0, 600.0)
    assert got["dose"]["factor"]["tube"] == "SBM-20"
    assert got["rate"]["lower"] < 10.0 < got["rate"]["upper"]
    r = await server.client.get(
        "/api/geiger/summary?node_id=node-1&confidence=2", headers=auth(reader)
    )
    assert r.status_code == 400
    other = await server.node("node-2")
    r = await server.client.get("/api/geiger/summary?node_id=node-1", headers=auth(other))
    assert r.status_code == 403
