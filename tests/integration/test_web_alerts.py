"""The dashboard's alerts and diagnostics pages through the ASGI app (SQLite and PostgreSQL):
active alerts, silences, the rules document, channels and their test button, notifications; the
database, ingestion, queues, bridge, leases and versions. Neither page ever shows a secret: the
settings here carry a database password, notification URLs with tokens and passwords, and a
broker password, and the tests look for each of them in every page."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from beamwarden.server.services.alerts import AlertService
from beamwarden.server.user_records import Role
from beamwarden.server.web.redact import database_target, describe, mask_host, scrub
from tests.conftest import START, Server, auth
from tests.fixtures.web import logged_in

DB_PASSWORD = "DBSECRETpw42"
SECRETS = (
    "SECRETWEBHOOKID99",
    "hookSECRETpass",
    "QUERYSECRET123",
    "DEADpass123",
    "MQTTSECRETpw",
    "bridgeuser",
    "hookuser",
)


class Receiver:
    """A webhook receiver on loopback that records every JSON body it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


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
def database_url(database_url: str) -> str:
    """The throwaway database's URL with a password in it (PostgreSQL's trust auth ignores it)."""
    if not database_url.startswith("postgres"):
        return database_url
    parts = urlsplit(database_url)
    if parts.password:
        return database_url
    netloc = parts.netloc.replace("@", f":{DB_PASSWORD}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def settings_overrides(receiver: Receiver) -> dict[str, Any]:
    return {
        "notify_urls": {
            "hook": f"json://hookuser:hookSECRETpass@127.0.0.1:{receiver.port}/alerts"
            "?token=QUERYSECRET123",
            "dead": "json://someone:DEADpass123@127.0.0.1:9/nowhere",
            "ops": "discord://SECRETWEBHOOKID99",  # no token: apprise does not take it
        },
        "notify_timeout_s": 5,
        "alert_interval_s": 3600,  # the tests step the evaluator by hand
        "alert_settle_s": 5,
        "bridge_mqtt_url": "mqtt://bridgeuser:MQTTSECRETpw@127.0.0.1:1",
    }


def alerts_of(server: Server) -> AlertService:
    alerts: AlertService = server.app.state.alerting.alerts
    return alerts


def assert_no_secret(server: Server, html: str) -> None:
    for secret in SECRETS:
        assert secret not in html
    assert DB_PASSWORD not in html
    for url in server.app.state.settings.notify_urls.values():
        assert url not in html
    assert server.app.state.settings.database_url not in html


def flash(html: str) -> str | None:
    match = re.search(r'<p class="flash (?:ok|bad)" role="\w+">([^<]*)</p>', html)
    return match.group(1) if match else None


RULES_TOML = """
[[rules]]
name = "attic-too-warm"
kind = "threshold"
field = "temperature_c"
above = 30.0
severity = "critical"

[[rules]]
name = "attic-slowly-warm"
kind = "threshold"
field = "temperature_c"
above = 30.0
for = "1h"
"""


async def warm_attic(server: Server) -> None:
    """Readings over 30 °C, then one evaluator cycle."""
    token = await server.node("node-1")
    items = [
        {
            "sensor_type": "climate",
            "sensor_id": "bme280@0x76",
            "payload": {"temperature_c": 31.0},
            "timestamp": (START + timedelta(seconds=s)).isoformat(),
        }
        for s in range(30)
    ]
    server.clock.set(START + timedelta(seconds=30))
    r = await server.client.post("/api/readings", json=items, headers=auth(token))
    assert r.status_code == 200, r.text
    server.clock.advance(30)
    await alerts_of(server).step()


async def test_alerts_page_shows_firing_pending_rules_channels_and_notifications(
    server: Server, receiver: Receiver
) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    r = await server.client.post("/alerts/rules", data={"document": RULES_TOML, "csrf_token": csrf})
    assert r.status_code == 303
    page = await server.client.get("/alerts")
    assert flash(page.text) == "rules saved (2 rules)"
    await warm_attic(server)
    page = await server.client.get("/alerts")
    assert page.status_code == 200
    firing = page.text.split('<tr data-alert="attic-too-warm/node-1/bme280@0x76/temperature_c">')
    assert len(firing) == 2
    row = firing[1].split("</tr>")[0]
    assert "firing" in row
    assert "critical" in row
    assert '<a href="/nodes/node-1">node-1</a>' in row
    pending = page.text.split(
        '<tr data-alert="attic-slowly-warm/node-1/bme280@0x76/temperature_c">'
    )
    assert "pending" in pending[1].split("</tr>")[0]
    # the rules, with where they came from; the document as the API gives it back
    assert "from api" in page.text
    assert "attic-slowly-warm" in page.text
    assert "&#34;above&#34;: 30.0" in page.text
    # channels: names and kinds, never a URL
    for name in ("hook", "dead", "ops"):
        assert f'<tr data-channel="{name}">' in page.text
    ops = page.text.split('<tr data-channel="ops">')[1].split("</tr>")[0]
    assert "discord" in ops
    assert "not understood" in ops
    hook = page.text.split('<tr data-channel="hook">')[1].split("</tr>")[0]
    assert f"12•••1:{receiver.port}" in hook
    # the firing alert was notified: to hook (sent), to dead (failed once, pending a retry)
    assert len(receiver.received) == 1
    assert page.text.count("<tr data-notification=") == 2
    assert '<span class="badge ok">sent</span>' in page.text
    assert '<span class="badge warn">pending</span>' in page.text
    assert_no_secret(server, page.text)


async def test_send_a_test_notification(server: Server, receiver: Receiver) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    r = await server.client.post("/alerts/test", data={"channel": "hook", "csrf_token": csrf})
    assert r.status_code == 303
    assert r.headers["location"] == "/alerts#channels"
    page = await server.client.get("/alerts")
    assert flash(page.text) == "test notification — hook: sent"
    assert [m["title"] for m in receiver.received] == ["Beamwarden test notification"]
    r = await server.client.post("/alerts/test", data={"channel": "dead", "csrf_token": csrf})
    page = await server.client.get("/alerts")
    message = flash(page.text)
    assert message is not None
    assert message.startswith("test notification — dead: failed: ")
    assert '<p class="flash bad"' in page.text
    assert_no_secret(server, page.text)
    r = await server.client.post("/alerts/test", data={"channel": "nope", "csrf_token": csrf})
    assert r.status_code == 404


async def test_silences_made_listed_and_ended(server: Server) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    r = await server.client.post(
        "/alerts/silences",
        data={
            "duration": "2h",
            "rules": "attic-too-warm, node-offline",
            "node": "node-1 node-2",
            "site": "",
            "comment": "moving the sensor",
            "csrf_token": csrf,
        },
    )
    assert r.status_code == 303
    page = await server.client.get("/alerts")
    message = flash(page.text)
    assert message is not None
    silence_id = re.fullmatch(r"silence (\d+) added", message)
    assert silence_id is not None
    (row,) = await alerts_of(server).silences()
    assert row.rules == ("attic-too-warm", "node-offline")
    assert row.scope == {"node": ["node-1", "node-2"]}
    assert row.ends_us - row.starts_us == 2 * 3600 * 1_000_000
    assert row.created_by == "session:root"
    listed = page.text.split(f'<tr data-silence="{row.id}">')[1].split("</tr>")[0]
    assert "attic-too-warm, node-offline" in listed
    assert "node=node-1|node-2" in listed
    assert "moving the sensor" in listed
    r = await server.client.post(f"/alerts/silences/{row.id}/expire", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert await alerts_of(server).silences() == []
    assert "No silence is in force." in (await server.client.get("/alerts")).text
    for bad in ("0", "99999"):
        r = await server.client.post(f"/alerts/silences/{bad}/expire", data={"csrf_token": csrf})
        assert r.status_code == 404


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "duration: "),
        ({"duration": "forever"}, "is not a duration"),
        ({"duration": "0s"}, "more than 0 s"),
        ({"duration": "400d"}, "at most 366 days"),
        ({"duration": "1h", "node": "n" * 129}, "at most 128 characters"),
        ({"duration": "1h", "comment": "c" * 1001}, "longer than 1000"),
    ],
)
async def test_bad_silences_are_a_400_page(
    server: Server, form: dict[str, str], message: str
) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    r = await server.client.post("/alerts/silences", data={**form, "csrf_token": csrf})
    assert r.status_code == 400
    assert message in r.text
    assert await alerts_of(server).silences() == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"rules": [{"name": "x", "kind": "nope"}]}', "x"),
        ("{", "not valid JSON"),
        ("[[rules]\nname=", "not valid TOML"),
        ('[[rules]]\nname = "hot"\nkind = "threshold"\n', "field"),
    ],
)
async def test_an_invalid_rules_document_comes_back_with_its_error(
    server: Server, document: str, message: str
) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    r = await server.client.post("/alerts/rules", data={"document": document, "csrf_token": csrf})
    assert r.status_code == 400
    error = re.search(r'<p class="flash bad" role="alert" id="rules-error">([^<]*)</p>', r.text)
    assert error is not None
    assert message in error.group(1)
    assert '<details class="card form-card" open>' in r.text
    kept = re.search(r'<textarea name="document"[^>]*>([^<]*)</textarea>', r.text)
    assert kept is not None
    assert kept.group(1).replace("&#34;", '"').replace("&#39;", "'") == document
    assert (await alerts_of(server).rules_document())["source"] != "api"


async def test_a_viewer_sees_alerts_but_no_notifications(server: Server) -> None:
    await logged_in(server.services, server.client, "vera", Role.VIEWER)
    page = await server.client.get("/alerts")
    assert page.status_code == 200
    assert 'id="notifications"' not in page.text
    assert "Send test" not in page.text
    assert '<tr data-channel="hook">' in page.text
    assert_no_secret(server, page.text)


# --- diagnostics ------------------------------------------------------------------------------


async def test_diagnostics_page_says_what_matters_and_no_secret(server: Server) -> None:
    token = await server.node("node-1")
    await server.node("node-2")
    beat = {
        "node_id": "node-1",
        "role": "pi-log",
        "timestamp": START.isoformat(),
        "uptime_seconds": 12.5,
        "software_version": "2.0.1",
        "ip_address": "192.168.1.20",
        "interval_seconds": 10,
        "metrics": {"queue_depth": 1234, "queue_oldest_age_s": 600.0},
    }
    r = await server.client.post("/api/telemetry", json=beat, headers=auth(token))
    assert r.status_code in (200, 202), r.text
    await logged_in(server.services, server.client, "vera", Role.VIEWER)
    # an error text quoting the broker's URL (a driver might): shown, scrubbed (set just before
    # the request: the bridge's own retries, seconds apart, write this field too)
    server.app.state.bridge.relay.stats.last_error = (
        "cannot log in to mqtt://bridgeuser:MQTTSECRETpw@127.0.0.1:1 as bridgeuser"
    )
    page = await server.client.get("/diagnostics")
    assert page.status_code == 200
    text = page.text
    database = text.split('id="database"')[1].split("</section>")[0]
    assert "answers" in database
    assert " ms</dd>" in database
    assert "schema revision" in database
    target = database_target(server.app.state.settings.database_url)
    if server.backend == "postgres":
        assert "<dd>postgresql</dd>" in database
        assert f"<dd>{target['database']}</dd>" in database
        assert "server version" in database
    else:
        assert "SQLite library" in database
        assert "<dd>sqlite</dd>" in database
    assert "postgres@" not in text  # no user name either
    queues = text.split('id="queues"')[1].split("</section>")[0]
    assert '<a href="/nodes/node-1">node-1</a></td><td>1 234</td>' in queues
    assert "10m 0s" in queues
    assert "node-2" not in queues
    bridge = text.split('id="bridge"')[1].split("</section>")[0]
    assert "127.0.0.1:1" in bridge
    assert "bridge:127.0.0.1:1" in bridge
    assert "last error" in bridge
    assert "cannot log in to" in bridge
    leases = text.split('id="leases"')[1].split("</section>")[0]
    assert "alert-evaluator" in leases
    versions = text.split('id="versions"')[1].split("</section>")[0]
    assert "beamwarden" in versions
    assert "python" in versions
    assert 'data-refresh-url="/ui/diagnostics"' in text
    assert_no_secret(server, text)
    panel = await server.client.get("/ui/diagnostics")
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert_no_secret(server, panel.text)


async def test_the_ingestion_rate_is_sampled_on_the_servers_clock(server: Server) -> None:
    token = await server.node("node-1")
    await logged_in(server.services, server.client, "root")
    first = await server.client.get("/ui/diagnostics")
    assert "measuring" in first.text.split('id="ingestion"')[1].split("</section>")[0]
    items = [
        {
            "sensor_type": "climate",
            "sensor_id": "bme280@0x76",
            "payload": {"temperature_c": 20.0},
            "timestamp": (START + timedelta(seconds=s)).isoformat(),
        }
        for s in range(100)
    ]
    r = await server.client.post("/api/readings", json=items, headers=auth(token))
    assert r.status_code == 200
    server.clock.advance(10)
    second = await server.client.get("/ui/diagnostics")
    ingestion = second.text.split('id="ingestion"')[1].split("</section>")[0]
    assert "10.0 readings/s" in ingestion
    assert "over the last 10s" in ingestion
    assert "100 stored" in ingestion


# --- the redaction helpers ----------------------------------------------------------------------


def test_channels_are_described_without_their_secrets() -> None:
    assert describe("ops", "discord://123456/abcdefTOKEN", True).where == ""
    assert describe("ops", "discord://123456/abcdefTOKEN", True).kind == "discord"
    hook = describe("h", "jsons://u:p4ss@hooks.example.com:8443/x?token=abc", True)
    assert (hook.kind, hook.where) == ("jsons", "ho•••.com:8443")
    assert describe("x", "not a url at all", False).kind == "?"
    assert mask_host("10.0.0.7") == "10•••7"


def test_scrub_removes_every_part_of_a_secret_url() -> None:
    url = "json://user1:passw0rd@hooks.example.com/path/TOKEN123?key=VALUE99"
    text = f"failed {url} (passw0rd, TOKEN123, VALUE99, hooks.example.com, user1)"
    cleaned = scrub(text, [url])
    assert cleaned is not None
    for part in ("passw0rd", "TOKEN123", "VALUE99", "hooks.example.com", "user1"):
        assert part not in cleaned
    assert cleaned.startswith("failed ")


def test_database_target_names_no_credential() -> None:
    pg = database_target("postgresql+asyncpg://bw:pw-secret@db.internal:5433/beamwarden?sslmode=x")
    assert pg == {
        "driver": "postgresql",
        "host": "db.internal",
        "port": "5433",
        "database": "beamwarden",
    }
    assert database_target("sqlite:///./data/bw.db") == {"driver": "sqlite", "file": "./data/bw.db"}
    assert database_target("sqlite:////var/lib/bw.db")["file"] == "/var/lib/bw.db"


async def test_toml_times_in_the_rules_document_are_kept_as_iso_text(server: Server) -> None:
    """TOML has times; the document is stored as JSON: a maintenance window's start survives."""
    csrf = await logged_in(server.services, server.client, "root")
    document = '[[maintenance]]\nname = "nightly"\nstart = 02:30:00\nduration = "1h"\n'
    r = await server.client.post("/alerts/rules", data={"document": document, "csrf_token": csrf})
    assert r.status_code == 303
    stored = (await alerts_of(server).rules_document())["document"]
    assert stored["maintenance"][0]["start"] == "02:30:00"
    (window,) = (await alerts_of(server).ruleset()).maintenance
    assert (window.start.hour, window.start.minute) == (2, 30)
