"""The inventory over time (issue 4): which node runs which software version since when
(``software_version_changed`` in the activity log, ``software_version_since``), uptime on the
server's clock (``running_since``), and offline nodes listed with their last known state and host.
SQLite and PostgreSQL, fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from beamwarden.protocol import Scope
from beamwarden.server.services.registry import SOFTWARE_VERSION_CHANGED, NodeRegistry
from tests.conftest import START, Server, auth

REG = {
    "node_id": "node-1",
    "role": "pi-log",
    "hostname": "pi-kitchen",
    "ip_address": "192.168.1.20",
    "software_version": "2.0.1",
    "tags": {},
}


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


async def register(server: Server, token: str, **over: Any) -> dict[str, Any]:
    r = await server.client.post("/api/nodes/register", json={**REG, **over}, headers=auth(token))
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


async def version_changes(server: Server, reader: str) -> list[dict[str, Any]]:
    r = await server.client.get(
        f"/api/events?kind={SOFTWARE_VERSION_CHANGED}&node_id=node-1", headers=auth(reader)
    )
    assert r.status_code == 200, r.text
    return [e["data"] for e in reversed(r.json()["items"])]


async def node(server: Server, reader: str) -> dict[str, Any]:
    r = await server.client.get("/api/nodes/node-1", headers=auth(reader))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_version_changes_are_logged_with_before_and_after(server: Server) -> None:
    key, reader = await server.user(Scope.ENROL), await server.user()
    token = (await register(server, key))["token"]
    server.clock.advance(3600)
    await register(server, token)  # a restart on the same version is not a change
    server.clock.advance(86_400)
    await register(server, token, software_version="2.1.0")
    assert await version_changes(server, reader) == [
        {"before": None, "after": "2.0.1", "source": "registration"},
        {"before": "2.0.1", "after": "2.1.0", "source": "registration"},
    ]
    record = await node(server, reader)
    assert record["software_version"] == "2.1.0"
    assert at(record["software_version_since"]) == START + timedelta(seconds=3600 + 86_400)


async def test_a_version_reported_by_telemetry_is_logged_once_across_replicas(
    server: Server,
) -> None:
    token, reader = await server.node(), await server.user()
    await register(server, token)
    services = server.services
    server.clock.advance(60)
    assert await services.registry.note_software_version("node-1", "2.2.0", "node:node-1")
    assert not await services.registry.note_software_version("node-1", "2.2.0", "node:node-1")
    # another replica's registry (its own memory, the same database) does not log it again
    other = NodeRegistry(services.store, services.credentials, services.activity, services.clock)
    assert not await other.note_software_version("node-1", "2.2.0", "node:node-1")
    changes = await version_changes(server, reader)
    assert changes[-1] == {"before": "2.0.1", "after": "2.2.0", "source": "telemetry"}
    assert len(changes) == 2
    record = await node(server, reader)
    assert record["software_version"] == "2.2.0"  # the log is newer than the registration
    assert at(record["software_version_since"]) == START + timedelta(seconds=60)
    # a re-registration with the version telemetry already reported is not a second change
    await register(server, token, software_version="2.2.0")
    assert len(await version_changes(server, reader)) == 2


async def test_running_since_is_on_the_servers_clock_and_offline_nodes_keep_their_last_state(
    server: Server,
) -> None:
    token, reader = await server.node(), await server.user()
    await register(server, token)
    server.clock.advance(5 * 3600)
    beat = {
        "node_id": "node-1",
        "role": "pi-log",
        "timestamp": (server.clock.now() - timedelta(hours=3)).isoformat(),  # a wrong node clock
        "uptime_seconds": 4 * 3600 + 23 * 60,
        "software_version": "2.0.1",
        "ip_address": "192.168.1.20",
        "interval_seconds": 30,
        "instance_id": "i-1",
        "state": "starting",
    }
    r = await server.client.post("/api/telemetry", json=beat, headers=auth(token))
    assert r.status_code == 202, r.text
    running_since = START + timedelta(hours=5) - timedelta(hours=4, minutes=23)
    record = await node(server, reader)
    assert record["status"] == "online"
    assert at(record["running_since"]) == running_since
    listed = (await server.client.get("/api/nodes", headers=auth(reader))).json()["items"]
    assert [(n["node_id"], at(n["running_since"])) for n in listed] == [("node-1", running_since)]

    await server.services.heartbeats.flush()
    server.clock.advance(600)  # 20 intervals without a heartbeat: offline
    listed = (await server.client.get("/api/nodes", headers=auth(reader))).json()["items"]
    offline = listed[0]
    assert {
        k: offline[k] for k in ("status", "state", "instance_id", "hostname", "ip_address")
    } == {
        "status": "offline",
        "state": "starting",
        "instance_id": "i-1",
        "hostname": "pi-kitchen",
        "ip_address": "192.168.1.20",
    }
    assert offline["running_since"] is None
    assert offline["heartbeat_age_seconds"] == 600
