"""Instances through telemetry (issue 4): the state machine, the node's lease held by its first live
instance, and what the activity log says — on SQLite and PostgreSQL, with the fake clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.conftest import START, Server, auth


def beat(instance_id: str, state: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "node_id": "node-1",
        "role": "pi-log",
        "timestamp": START.isoformat(),
        "uptime_seconds": 1.0,
        "software_version": "2.0.1",
        "ip_address": "192.168.1.20",
        "interval_seconds": 15,
        "instance_id": instance_id,
        "state": state,
    }
    body.update(over)
    return body


async def send(server: Server, token: str, instance_id: str, state: str, **over: Any) -> Any:
    return await server.client.post(
        "/api/telemetry", json=beat(instance_id, state, **over), headers=auth(token)
    )


async def instance_events(server: Server, reader: str) -> list[dict[str, Any]]:
    r = await server.client.get("/api/events?node_id=node-1&limit=1000", headers=auth(reader))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    return [e for e in reversed(items) if e["kind"].startswith("instance_")]


async def state_of(server: Server, reader: str) -> str | None:
    node = (await server.client.get("/api/nodes/node-1", headers=auth(reader))).json()
    state: str | None = node["state"]
    return state


async def test_a_full_cycle_logs_six_ordered_transitions(server: Server) -> None:
    token, reader = await server.node(), await server.user()
    cycle = ["idle", "starting", "warming", "active", "stopping", "stopped", "idle"]
    for state in cycle:
        r = await send(server, token, "i-1", state)
        assert r.status_code == 202, r.text
        r = await send(server, token, "i-1", state)  # a repeat changes nothing
        assert r.status_code == 202, r.text
    events = await instance_events(server, reader)
    assert [e["kind"] for e in events] == ["instance_started"] + ["instance_state"] * 6
    changes = [(e["data"]["before"], e["data"]["after"]) for e in events[1:]]
    assert changes == list(itertools.pairwise(cycle))
    assert all(e["data"]["instance_id"] == "i-1" for e in events)


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["idle"], "active"),
        (["idle", "starting", "warming", "active"], "warming"),
        (["idle", "starting", "warming", "active", "stopping"], "active"),
        (["idle", "starting", "warming", "active", "stopping", "stopped"], "active"),
    ],
)
async def test_a_refused_transition_changes_nothing(
    server: Server, path: list[str], refused: str
) -> None:
    token, reader = await server.node(), await server.user()
    for state in path:
        assert (await send(server, token, "i-1", state)).status_code == 202
    logged = await instance_events(server, reader)
    r = await send(server, token, "i-1", refused)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "invalid_transition"
    assert path[-1] in r.json()["error"]["message"]
    assert await state_of(server, reader) == path[-1]
    assert await instance_events(server, reader) == logged


async def test_a_second_live_instance_is_refused_naming_the_holder(server: Server) -> None:
    token, reader = await server.node(), await server.user()
    for state in ("starting", "warming", "active"):
        assert (await send(server, token, "i-1", state)).status_code == 202
    for state in ("starting", "idle"):  # a clone, whatever it says
        r = await send(server, token, "i-2", state, ip_address="192.168.1.99")
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "lease_held"
        assert error["details"][0]["holder"] == "i-1"
        assert error["details"][0]["ip"] == "192.168.1.20"
        assert error["details"][0]["time_left_seconds"] == pytest.approx(45)
    assert (await state_of(server, reader)) == "active"  # the clone's heartbeat was not taken
    r = await server.client.get("/api/events?kind=lease_refused", headers=auth(reader))
    assert len(r.json()["items"]) == 1  # logged once, not once per heartbeat

    # the holder goes silent: after its TTL (3 intervals) the next instance gets the node
    server.clock.advance(46)
    assert (await send(server, token, "i-2", "starting")).status_code == 202
    r = await send(server, token, "i-1", "active")
    assert r.status_code == 409
    assert r.json()["error"]["details"][0]["holder"] == "i-2"


async def test_a_clean_stop_hands_the_node_over_at_once(server: Server) -> None:
    token = await server.node()
    for state in ("starting", "warming", "active", "stopping"):
        assert (await send(server, token, "i-1", state)).status_code == 202
    assert (await send(server, token, "i-2", "starting")).status_code == 409
    assert (await send(server, token, "i-1", "stopped")).status_code == 202
    assert (await send(server, token, "i-2", "starting")).status_code == 202


async def test_a_failed_start_logs_the_error_and_releases_the_node(server: Server) -> None:
    token, reader = await server.node(), await server.user()
    for state in ("idle", "starting", "warming"):
        assert (await send(server, token, "i-1", state)).status_code == 202
    r = await send(server, token, "i-1", "idle", tags={"error": "serial port /dev/ttyUSB0 gone"})
    assert r.status_code == 202
    last = (await instance_events(server, reader))[-1]
    assert (last["data"]["before"], last["data"]["after"]) == ("warming", "idle")
    assert "start aborted" in last["message"]
    assert "serial port /dev/ttyUSB0 gone" in last["message"]
    assert (await send(server, token, "i-2", "starting")).status_code == 202


async def test_heartbeats_without_an_instance_take_no_lease(server: Server) -> None:
    token = await server.node()
    body = beat("x", "idle")
    del body["instance_id"], body["state"]
    assert (
        await server.client.post("/api/telemetry", json=body, headers=auth(token))
    ).status_code == 202
    assert (await send(server, token, "i-1", "starting")).status_code == 202


async def test_a_known_instance_taking_its_node_again_is_not_news(server: Server) -> None:
    """Its lease lapsed (a server restart with in-memory presence looks the same): the next
    heartbeat takes the node again, without a new ``lease_granted`` event."""
    token, reader = await server.node(), await server.user()
    for state in ("starting", "warming", "active"):
        assert (await send(server, token, "i-1", state)).status_code == 202
    server.clock.advance(60)
    assert (await send(server, token, "i-1", "active")).status_code == 202
    r = await server.client.get("/api/events?kind=lease_granted", headers=auth(reader))
    assert len(r.json()["items"]) == 1
