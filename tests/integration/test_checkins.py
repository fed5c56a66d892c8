"""Check-ins (issue 7) through the API on SQLite and PostgreSQL with the fake clock: a missed
check-in alerts once and resolves with the next ping; a failure ping alerts; slugs are secrets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from beamwarden.protocol import Scope
from tests.conftest import START, Server, auth
from tests.integration import test_alerts_flow as flow
from tests.integration.test_alerts_flow import Receiver, alerts_of

#: the loopback webhook receiver and the settings that point a channel at it
receiver = flow.receiver
settings_overrides = flow.settings_overrides


async def add(server: Server, admin: str, **body: Any) -> dict[str, Any]:
    r = await server.client.post("/api/checkins", json=body, headers=auth(admin))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_a_missed_check_in_alerts_once_and_a_ping_resolves_it(
    server: Server, receiver: Receiver
) -> None:
    admin = await server.user(Scope.ADMIN)
    made = await add(server, admin, name="nightly-backup", every="1h", grace="10m")
    slug = made["slug"]
    assert slug.startswith("bwc_")
    assert len(slug) >= 4 + 32  # 192 random bits
    assert made["ping_url"] == f"http://testserver/api/checkins/{slug}"
    assert made["next_due"] == "2026-11-22T13:00:00Z"
    alerts = alerts_of(server)
    server.clock.advance(3600 + 600)  # due + grace: not late yet
    await alerts.step()
    assert receiver.received == []
    server.clock.advance(1)
    await alerts.step()
    server.clock.advance(600)
    await alerts.step()  # still missing: no second notification
    assert len(receiver.received) == 1
    assert receiver.messages()[0].startswith(
        "[FIRING] checkin: nightly-backup\ncheck-in nightly-backup is late or failed: no check-in"
    )
    listed = (await server.client.get("/api/checkins", headers=auth(admin))).json()["items"]
    assert [(c["name"], c["alerting"]) for c in listed] == [("nightly-backup", True)]
    assert "slug" not in listed[0]
    r = await server.client.post(f"/api/checkins/{slug}", content=b"42 files")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "nightly-backup", "status": "success"}
    await alerts.step()
    assert len(receiver.received) == 2
    assert receiver.messages()[1].startswith("[RESOLVED] checkin: nightly-backup")


async def test_a_failure_ping_alerts_with_its_message(server: Server, receiver: Receiver) -> None:
    admin = await server.user(Scope.ADMIN)
    made = await add(server, admin, name="cron-job", cron="30 2 * * *", grace="1h")
    assert made["next_due"] == "2026-11-23T02:30:00Z"
    r = await server.client.post(f"/api/checkins/{made['slug']}/fail", content=b"disk full")
    assert r.status_code == 200
    await alerts_of(server).step()
    assert len(receiver.received) == 1
    assert "the last check-in reported a failure: disk full" in receiver.messages()[0]
    events = (await server.client.get("/api/events?kind=alert_firing", headers=auth(admin))).json()
    assert [e["data"]["subject"] for e in events["items"]] == ["cron-job"]


async def test_unknown_slugs_and_bad_schedules_are_refused(server: Server) -> None:
    admin, reader = await server.user(Scope.ADMIN), await server.user(Scope.READ)
    r = await server.client.post("/api/checkins/bwc_not-a-real-slug-at-all")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_checkin"
    for body in (
        {"name": "a", "every": "1h", "cron": "* * * * *"},
        {"name": "a"},
        {"name": "a", "cron": "61 * * * *"},
        {"name": "a", "cron": "* * *"},
        {"name": "a", "every": "soon"},
        {"name": "a", "every": "10s"},
    ):
        r = await server.client.post("/api/checkins", json=body, headers=auth(admin))
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] in ("invalid_schedule", "schema_violation")
    r = await server.client.post(
        "/api/checkins", json={"name": "a", "every": "1d"}, headers=auth(reader)
    )
    assert r.status_code == 403
    await add(server, admin, name="a", every="1d")
    r = await server.client.post(
        "/api/checkins", json={"name": "a", "every": "1d"}, headers=auth(admin)
    )
    assert r.status_code == 409
    r = await server.client.delete("/api/checkins/a", headers=auth(admin))
    assert r.status_code == 204
    r = await server.client.delete("/api/checkins/a", headers=auth(admin))
    assert r.status_code == 404


async def test_a_silence_of_checkins_mutes_them(server: Server, receiver: Receiver) -> None:
    admin = await server.user(Scope.ADMIN)
    await add(server, admin, name="job", every="1h", grace="0s")
    r = await server.client.post(
        "/api/silences", json={"rules": ["checkin"], "duration": "3h"}, headers=auth(admin)
    )
    assert r.status_code == 201
    server.clock.set(START + timedelta(hours=2))
    await alerts_of(server).step()
    assert receiver.received == []
    server.clock.set(START + timedelta(hours=3, minutes=1))
    await alerts_of(server).step()
    assert len(receiver.received) == 1
    assert receiver.messages()[0].startswith("[STILL FIRING] checkin: job")
