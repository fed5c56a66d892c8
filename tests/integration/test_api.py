"""The HTTP API of PROTOCOL.md through the ASGI app, on SQLite and on PostgreSQL."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import pytest

from beamwarden.protocol import Scope
from tests.conftest import START, Server, auth

REG = {
    "node_id": "node-1",
    "role": "pi-log",
    "hostname": "pi-kitchen",
    "ip_address": "192.168.1.20",
    "software_version": "2.0.1",
    "tags": {"rack": "a"},
}


def beat(**over: Any) -> dict[str, Any]:
    body = {
        "node_id": "node-1",
        "role": "pi-log",
        "timestamp": START.isoformat(),
        "uptime_seconds": 12.5,
        "software_version": "2.0.1",
        "ip_address": "192.168.1.20",
        "interval_seconds": 10,
        "metrics": {"cpu_percent": 3.5, "on_battery": False},
    }
    body.update(over)
    return body


def climate(i: int, **over: Any) -> dict[str, Any]:
    body = {
        "node_id": "node-1",
        "sensor_type": "climate",
        "sensor_id": "bme280@0x76",
        "payload": {"temperature_c": 20.0 + i, "humidity_pct": 40.0},
        "timestamp": (START + timedelta(seconds=i)).isoformat(),
        "reading_id": f"q1:{i + 1}",
    }
    body.update(over)
    return body


# --- errors and the envelope -------------------------------------------------------------------


async def test_unknown_route_is_an_enveloped_404_with_request_id(server: Server) -> None:
    r = await server.client.get("/api/nope", headers={"X-Request-Id": "abc-123"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "abc-123"
    err = r.json()["error"]
    assert err["code"] == "not_found"
    assert err["request_id"] == "abc-123"


async def test_every_answer_has_a_request_id(server: Server) -> None:
    r = await server.client.get("/api/health/live")
    assert r.status_code == 200
    assert len(r.headers["x-request-id"]) >= 16


async def test_a_hostile_request_id_is_replaced(server: Server) -> None:
    r = await server.client.get("/api/health/live", headers={"X-Request-Id": "a b\x7f" * 40})
    assert " " not in r.headers["x-request-id"]


async def test_reads_need_a_credential(server: Server) -> None:
    for path in ("/api/nodes", "/api/readings", "/api/events", "/api/health", "/api/nodes/node-1"):
        r = await server.client.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "unauthenticated"
    r = await server.client.get("/api/series?sensor_id=x&field=y&node_id=n")
    assert r.status_code == 401


async def test_unknown_token_is_401(server: Server) -> None:
    r = await server.client.get("/api/nodes", headers=auth("bwu_nope"))
    assert r.status_code == 401


async def test_query_validation_is_400_not_422(server: Server) -> None:
    token = await server.user()
    r = await server.client.get("/api/readings?limit=0", headers=auth(token))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "schema_violation"
    assert err["details"][0]["field"] == "query:limit"


# --- registration and enrolment ----------------------------------------------------------------


async def test_enrolment_key_creates_a_node_once(server: Server) -> None:
    key = await server.user(Scope.ENROL)
    r = await server.client.post("/api/nodes/register", json=REG, headers=auth(key))
    assert r.status_code == 201, r.text
    body = r.json()
    token = body["token"]
    assert body["node_id"] == "node-1"
    assert body["hostname"] == "pi-kitchen"
    assert body["status"] == "unknown"
    # the token works
    r = await server.client.get("/api/nodes/node-1", headers=auth(token))
    assert r.status_code == 200
    # an existing node id is refused
    r = await server.client.post("/api/nodes/register", json=REG, headers=auth(key))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "node_exists"
    # until an admin re-opens enrolment: then a new token, and the old one stops working
    await server.services.registry.open_enrolment("node-1")
    r = await server.client.post("/api/nodes/register", json=REG, headers=auth(key))
    assert r.status_code == 200
    new_token = r.json()["token"]
    assert new_token != token
    assert (await server.client.get("/api/nodes/node-1", headers=auth(token))).status_code == 401
    assert (
        await server.client.get("/api/nodes/node-1", headers=auth(new_token))
    ).status_code == 200
    r = await server.client.post("/api/nodes/register", json=REG, headers=auth(key))
    assert r.status_code == 409
    kinds = [e.kind for e in await server.services.activity.list(_all(), 10, None)]
    assert "node_enrolled" in kinds
    assert "node_reenrolled" in kinds


def _all() -> Any:
    from beamwarden.server.records import EventFilter

    return EventFilter()


async def test_registration_updates_reported_and_keeps_operator_fields(server: Server) -> None:
    from beamwarden.server.records import OperatorFields

    token = await server.node()
    await server.services.registry.set_operator_fields(
        "node-1",
        OperatorFields(display_name="Kitchen", site="home", operator_tags={"owner": "ann"}),
    )
    r = await server.client.post("/api/nodes/register", json=REG, headers=auth(token))
    assert r.status_code == 200, r.text
    assert "token" not in r.json()
    r = await server.client.post(
        "/api/nodes/register",
        json={**REG, "hostname": "pi-hall", "software_version": "2.1.0", "tags": {"rack": "b"}},
        headers=auth(token),
    )
    node = r.json()
    assert node["hostname"] == "pi-hall"
    assert node["software_version"] == "2.1.0"
    assert node["reported_tags"] == {"rack": "b"}
    assert node["display_name"] == "Kitchen"
    assert node["site"] == "home"
    assert node["operator_tags"] == {"owner": "ann"}


async def test_a_node_token_registers_only_its_own_node(server: Server) -> None:
    token = await server.node()
    await server.node("node-2")
    r = await server.client.post(
        "/api/nodes/register", json={**REG, "node_id": "node-2"}, headers=auth(token)
    )
    assert r.status_code == 403


async def test_registration_schema_violation_names_fields(server: Server) -> None:
    token = await server.node()
    r = await server.client.post(
        "/api/nodes/register",
        json={**REG, "ip_address": "not-an-ip", "node_id": "Bad Id"},
        headers=auth(token),
    )
    assert r.status_code == 400
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {"ip_address", "node_id"} <= fields


# --- telemetry and status ----------------------------------------------------------------------


async def test_heartbeats_drive_status_on_the_servers_clock(server: Server) -> None:
    token = await server.node()
    r = await server.client.get("/api/nodes/node-1", headers=auth(token))
    assert r.json()["status"] == "unknown"
    r = await server.client.post(
        "/api/telemetry", json=beat(state="active", instance_id="i-1"), headers=auth(token)
    )
    assert r.status_code == 202, r.text
    node = (await server.client.get("/api/nodes/node-1", headers=auth(token))).json()
    assert node["status"] == "online"
    assert node["state"] == "active"  # before the heartbeat is written, too
    assert node["instance_id"] == "i-1"
    assert node["interval_seconds"] == 10
    server.clock.advance(21)
    node = (await server.client.get("/api/nodes/node-1", headers=auth(token))).json()
    assert node["status"] == "degraded"
    assert node["heartbeat_age_seconds"] == pytest.approx(21)
    server.clock.advance(30)
    node = (await server.client.get("/api/nodes/node-1", headers=auth(token))).json()
    assert node["status"] == "offline"


async def test_heartbeats_are_written_and_estimate_the_clock_offset(server: Server) -> None:
    token = await server.node()
    ahead = (START + timedelta(seconds=30)).isoformat()
    for _ in range(3):
        r = await server.client.post(
            "/api/telemetry", json=beat(timestamp=ahead), headers=auth(token)
        )
        assert r.status_code == 202
    assert await server.services.heartbeats.flush() >= 0
    assert server.services.heartbeats.buffered == 0  # all three written, by now or by the flusher
    row = await server.services.store.get_node("node-1")
    assert row is not None
    assert row.last_heartbeat_us is not None
    assert row.clock_offset_seconds == pytest.approx(30)
    node = (await server.client.get("/api/nodes/node-1", headers=auth(token))).json()
    assert node["clock_offset_seconds"] == pytest.approx(30)


async def test_telemetry_protocol_versions(server: Server) -> None:
    token = await server.node()
    r = await server.client.post(
        "/api/telemetry", json=beat(protocol_version="1.3"), headers=auth(token)
    )
    assert r.status_code == 202
    r = await server.client.post(
        "/api/telemetry", json=beat(protocol_version="2.0"), headers=auth(token)
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_protocol_version"


async def test_telemetry_for_another_node_is_403(server: Server) -> None:
    token = await server.node()
    await server.node("node-2")
    r = await server.client.post("/api/telemetry", json=beat(node_id="node-2"), headers=auth(token))
    assert r.status_code == 403


async def test_telemetry_invalid_state_is_400(server: Server) -> None:
    token = await server.node()
    r = await server.client.post("/api/telemetry", json=beat(state="dancing"), headers=auth(token))
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["field"] == "state"


# --- readings ----------------------------------------------------------------------------------


async def test_three_shapes_and_three_body_forms(server: Server) -> None:
    token = await server.node()
    generic = climate(0)
    logexp = {
        "counts_per_second": 1,
        "counts_per_minute": 42,
        "microsieverts_per_hour": 0.28,
        "mode": "slow",
        "timestamp": START.isoformat(),
    }
    fleet = {
        "node_id": "node-1",
        "timestamp": START.isoformat(),
        "cps": 0.7,
        "cpm": 42,
        "counts": 5,
    }
    for body in (generic, [logexp], {"readings": [fleet]}):
        r = await server.client.post("/api/readings", json=body, headers=auth(token))
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 1, "duplicates": 0}
    r = await server.client.get("/api/readings?node_id=node-1", headers=auth(token))
    items = r.json()["items"]
    assert len(items) == 3
    geiger = [i for i in items if i["sensor_type"] == "geiger"]
    assert {tuple(sorted(g["payload"])) for g in geiger} == {
        ("cpm", "cps", "mode", "usv_per_hour"),
        ("counts", "cpm", "cps"),
    }


async def test_gzip_bodies_and_the_geiger_alias(server: Server) -> None:
    token = await server.node()
    body = gzip.compress(json.dumps([climate(i) for i in range(5)]).encode())
    r = await server.client.post(
        "/api/geiger/push",
        content=body,
        headers={**auth(token), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "duplicates": 0}


async def test_bad_gzip_is_400(server: Server) -> None:
    token = await server.node()
    r = await server.client.post(
        "/api/readings", content=b"not gzip", headers={**auth(token), "Content-Encoding": "gzip"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_gzip"


async def test_other_encodings_are_415(server: Server) -> None:
    token = await server.node()
    r = await server.client.post(
        "/api/readings", content=b"[]", headers={**auth(token), "Content-Encoding": "br"}
    )
    assert r.status_code == 415


async def test_retries_are_duplicates_not_new_readings(server: Server) -> None:
    token = await server.node()
    batch = [climate(i) for i in range(10)]
    r = await server.client.post("/api/readings", json=batch, headers=auth(token))
    assert r.json() == {"accepted": 10, "duplicates": 0}
    r = await server.client.post(
        "/api/readings", json=[*batch[5:], climate(10)], headers=auth(token)
    )
    assert r.json() == {"accepted": 1, "duplicates": 5}
    r = await server.client.get("/api/readings?limit=1000", headers=auth(token))
    assert len(r.json()["items"]) == 11


async def test_a_conflicting_retry_is_kept_once_and_logged(server: Server) -> None:
    token = await server.node()
    await server.client.post("/api/readings", json=[climate(0)], headers=auth(token))
    changed = climate(0, payload={"temperature_c": 99.0})
    r = await server.client.post("/api/readings", json=[changed], headers=auth(token))
    assert r.json() == {"accepted": 0, "duplicates": 1}
    items = (await server.client.get("/api/readings", headers=auth(token))).json()["items"]
    assert [i["payload"]["temperature_c"] for i in items] == [20.0]
    events = await server.services.activity.list(_all(), 10, None)
    assert any(e.kind == "reading_conflict" for e in events)


async def test_batches_are_all_or_nothing_and_name_every_bad_item(server: Server) -> None:
    token = await server.node()
    batch = [climate(i) for i in range(5)]
    batch[1]["payload"] = {"temperature_f": 70}
    batch[3]["timestamp"] = "2026-11-22T12:00:00"  # no zone
    r = await server.client.post("/api/readings", json=batch, headers=auth(token))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "schema_violation"
    assert {(d["index"], d["field"]) for d in err["details"]} == {
        (1, "payload.temperature_f"),
        (3, "timestamp"),
    }
    assert "temperature_c" in err["details"][0]["message"]
    r = await server.client.get("/api/readings", headers=auth(token))
    assert r.json()["items"] == []


async def test_writing_for_another_node_needs_relay(server: Server) -> None:
    token = await server.node()
    await server.node("node-2")
    r = await server.client.post(
        "/api/readings", json=[climate(0, node_id="node-2")], headers=auth(token)
    )
    assert r.status_code == 403
    relay = await server.node("bridge-1", role="mqtt-bridge", relay=True)
    r = await server.client.post(
        "/api/readings",
        json=[climate(0, node_id="node-2"), climate(1, node_id="ghost")],
        headers=auth(relay),
    )
    assert r.status_code == 400
    assert r.json()["error"]["details"] == [
        {"index": 1, "field": "node_id", "message": "'ghost' is not a registered node"}
    ]
    r = await server.client.post(
        "/api/readings", json=[climate(0, node_id="node-2")], headers=auth(relay)
    )
    assert r.status_code == 200
    reader = await server.user()
    item = (await server.client.get("/api/readings?node_id=node-2", headers=auth(reader))).json()
    assert item["items"][0]["source"] == "bridge-1"


async def test_fleet_wide_sensor_ids_share_one_series_across_gateways(server: Server) -> None:
    a = await server.node("gw-a", relay=True)
    b = await server.node("gw-b", relay=True)
    for i, token in enumerate((a, b)):
        body = {
            "sensor_type": "climate",
            "sensor_id": "govee:33FA4381ECA1010A",
            "payload": {"temperature_c": 10.0 + i},
            "timestamp": (START + timedelta(seconds=i)).isoformat(),
        }
        r = await server.client.post("/api/readings", json=body, headers=auth(token))
        assert r.status_code == 200, r.text
    reader = await server.user()
    r = await server.client.get(
        "/api/series",
        params={
            "sensor_id": "govee:33FA4381ECA1010A",
            "field": "temperature_c",
            "since": START.isoformat(),
            "until": (START + timedelta(minutes=1)).isoformat(),
            "bucket": "60s",
        },
        headers=auth(reader),
    )
    assert r.status_code == 200, r.text
    (bucket,) = r.json()["items"]
    assert bucket["count"] == 2
    assert bucket["avg"] == pytest.approx(10.5)


async def test_header_aliases_for_nodes_in_the_field(server: Server) -> None:
    token = await server.node()
    r = await server.client.post("/api/readings", json=[climate(0)], headers={"X-BW-Auth": token})
    assert r.status_code == 200
    r = await server.client.post(
        "/api/readings",
        json=[climate(1)],
        headers={"X-Device-Token": token, "X-Device-Name": "node-1"},
    )
    assert r.status_code == 200
    r = await server.client.post(
        "/api/readings",
        json=[climate(2)],
        headers={"X-Device-Token": token, "X-Device-Name": "node-9"},
    )
    assert r.status_code == 403


async def test_user_tokens_cannot_write_readings(server: Server) -> None:
    admin = await server.user(Scope.ADMIN)
    r = await server.client.post("/api/readings", json=[climate(0)], headers=auth(admin))
    assert r.status_code == 403


async def test_geiger_without_timestamp_gets_the_receive_time(server: Server) -> None:
    token = await server.node()
    body = {
        "counts_per_second": 0,
        "counts_per_minute": 20,
        "microsieverts_per_hour": 0.1,
        "mode": "FAST",
    }
    r = await server.client.post("/api/geiger/push", json=body, headers=auth(token))
    assert r.status_code == 200
    (item,) = (await server.client.get("/api/readings", headers=auth(token))).json()["items"]
    assert item["timestamp_source"] == "server"
    assert item["timestamp"].startswith("2026-11-22T12:00:00")
    assert item["payload"]["mode"] == "FAST"


async def test_suspect_timestamps_are_flagged_and_kept(server: Server) -> None:
    token = await server.node()
    past = climate(0, timestamp="1970-01-01T00:00:10Z")
    future = climate(1, timestamp=(START + timedelta(minutes=6)).isoformat())
    fine = climate(2, timestamp=(START + timedelta(minutes=4)).isoformat())
    r = await server.client.post("/api/readings", json=[past, future, fine], headers=auth(token))
    assert r.status_code == 200
    items = (await server.client.get("/api/readings", headers=auth(token))).json()["items"]
    assert [i["timestamp_suspect"] for i in items] == [True, False, True]  # oldest first


@pytest.mark.parametrize("settings_overrides", [{"max_batch": 3, "max_body_bytes": 4096}])
async def test_limits_are_413(server: Server) -> None:
    token = await server.node()
    r = await server.client.post(
        "/api/readings", json=[climate(i) for i in range(4)], headers=auth(token)
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "batch_too_large"
    big = json.dumps([climate(0, payload={"note": "x" * 5000}, sensor_type="misc")]).encode()
    r = await server.client.post("/api/readings", content=big, headers=auth(token))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    r = await server.client.post(
        "/api/readings", content=bomb, headers={**auth(token), "Content-Encoding": "gzip"}
    )
    assert r.status_code == 413


async def test_empty_batch_is_fine(server: Server) -> None:
    token = await server.node()
    r = await server.client.post("/api/readings", json=[], headers=auth(token))
    assert r.json() == {"accepted": 0, "duplicates": 0}


async def test_not_json_is_400(server: Server) -> None:
    token = await server.node()
    r = await server.client.post("/api/readings", content=b"{nope", headers=auth(token))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "schema_violation"


# --- reading it back ---------------------------------------------------------------------------


async def test_readings_pages_with_cursors_oldest_first(server: Server) -> None:
    token = await server.node()
    await server.client.post(
        "/api/readings", json=[climate(i) for i in range(25)], headers=auth(token)
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10, "sensor_id": "bme280@0x76"}
        if cursor:
            params["cursor"] = cursor
        body = (await server.client.get("/api/readings", params=params, headers=auth(token))).json()
        seen += [i["timestamp"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == 25
    assert seen == sorted(seen)
    assert len(set(seen)) == 25


async def test_a_foreign_cursor_is_400(server: Server) -> None:
    token = await server.node()
    r = await server.client.get("/api/readings?cursor=garbage", headers=auth(token))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"


async def test_node_tokens_read_only_their_own_node(server: Server) -> None:
    token = await server.node()
    await server.node("node-2")
    assert (
        await server.client.get("/api/readings?node_id=node-2", headers=auth(token))
    ).status_code == 403
    assert (await server.client.get("/api/nodes/node-2", headers=auth(token))).status_code == 403
    nodes = (await server.client.get("/api/nodes", headers=auth(token))).json()["items"]
    assert [n["node_id"] for n in nodes] == ["node-1"]


async def test_series_buckets(server: Server) -> None:
    token = await server.node()
    readings = [climate(i * 20) for i in range(9)]  # 0..160 s: buckets of 60 s hold 3, 3, 3
    await server.client.post("/api/readings", json=readings, headers=auth(token))
    r = await server.client.get(
        "/api/series",
        params={
            "node_id": "node-1",
            "sensor_id": "bme280@0x76",
            "field": "temperature_c",
            "since": START.isoformat(),
            "until": (START + timedelta(minutes=10)).isoformat(),
            "bucket": "1m",
            "agg": "avg,min,max,count",
        },
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["count"] for i in items] == [3, 3, 3]
    assert set(items[0]) == {"t", "avg", "min", "max", "count"}  # only what was asked for
    assert [i["min"] for i in items] == [20.0, 80.0, 140.0]
    assert items[0]["avg"] == pytest.approx(40.0)
    assert items[0]["t"].startswith("2026-11-22T12:00:00")


async def test_a_day_in_minutes_is_one_page(server: Server) -> None:
    token = await server.node()
    await server.client.post(
        "/api/readings",
        json=[climate(i * 60, reading_id=None) for i in range(1440)],
        headers=auth(token),
    )
    params = {
        "node_id": "node-1",
        "sensor_id": "bme280@0x76",
        "field": "temperature_c",
        "since": START.isoformat(),
        "until": (START + timedelta(days=1)).isoformat(),
    }
    body = (await server.client.get("/api/series", params=params, headers=auth(token))).json()
    assert len(body["items"]) == 1440
    assert body["next_cursor"] is None
    assert body["items"][-1]["t"] == "2026-11-23T11:59:00Z"
    two = (
        await server.client.get(
            "/api/series", params={**params, "limit": 1000}, headers=auth(token)
        )
    ).json()
    assert len(two["items"]) == 1000
    rest = (
        await server.client.get(
            "/api/series", params={**params, "cursor": two["next_cursor"]}, headers=auth(token)
        )
    ).json()
    assert two["items"] + rest["items"] == body["items"]


async def test_series_refuses_bad_parameters(server: Server) -> None:
    token = await server.user()
    base = {"node_id": "node-1", "sensor_id": "s", "field": "temperature_c"}
    for extra, code in (
        ({"bucket": "7x"}, "invalid_bucket"),
        ({"bucket": "0s"}, "invalid_bucket"),
        ({"agg": "median"}, "invalid_aggregate"),
        ({"field": "Temp C"}, "invalid_field"),
        ({"node_id": None}, "node_id_required"),
    ):
        params = {k: v for k, v in {**base, **extra}.items() if v is not None}
        r = await server.client.get("/api/series", params=params, headers=auth(token))
        assert r.status_code == 400, (extra, r.text)
        assert r.json()["error"]["code"] == code


async def test_events_newest_first_with_cursor(server: Server) -> None:
    for i in range(5):
        await server.node(f"node-{i}")
    reader = await server.user()
    body = (await server.client.get("/api/events?limit=3", headers=auth(reader))).json()
    assert [e["node_id"] for e in body["items"]] == ["node-4", "node-3", "node-2"]
    body = (
        await server.client.get(
            f"/api/events?limit=3&cursor={body['next_cursor']}", headers=auth(reader)
        )
    ).json()
    assert [e["node_id"] for e in body["items"]] == ["node-1", "node-0"]
    assert body["next_cursor"] is None


async def test_nodes_list_pages(server: Server) -> None:
    for i in range(5):
        await server.node(f"node-{i}")
    reader = await server.user()
    body = (await server.client.get("/api/nodes?limit=2", headers=auth(reader))).json()
    ids = [n["node_id"] for n in body["items"]]
    while body["next_cursor"]:
        body = (
            await server.client.get(
                f"/api/nodes?limit=2&cursor={body['next_cursor']}", headers=auth(reader)
            )
        ).json()
        ids += [n["node_id"] for n in body["items"]]
    assert ids == [f"node-{i}" for i in range(5)]


# --- health and metrics ------------------------------------------------------------------------


async def test_health_endpoints(server: Server) -> None:
    assert (await server.client.get("/api/health/live")).json() == {"status": "ok"}
    r = await server.client.get("/api/health/ready")
    assert r.status_code == 200
    reader = await server.user()
    r = await server.client.get("/api/health", headers=auth(reader))
    body = r.json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["backend"] == server.backend.replace(
        "postgres", "postgresql"
    )
    assert "url" not in json.dumps(body).lower()


async def test_metrics_from_loopback_and_with_a_token(server: Server) -> None:
    token = await server.node()
    await server.client.post("/api/readings", json=[climate(0)], headers=auth(token))
    text = (await server.client.get("/metrics")).text
    assert "beamwarden_readings_accepted_total 1.0" in text
    assert 'beamwarden_nodes{status="unknown"} 1.0' in text
    assert "beamwarden_http_request_duration_seconds_bucket" in text
    assert 'route="/api/readings",status="200"' in text
    import httpx

    remote = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=server.app, client=("10.1.2.3", 4000)),
        base_url="http://testserver",
    )
    async with remote:
        assert (await remote.get("/metrics")).status_code == 401
        reader = await server.user(Scope.READ)
        assert (await remote.get("/metrics", headers=auth(reader))).status_code == 403
        scraper = await server.user(Scope.METRICS)
        assert (await remote.get("/metrics", headers=auth(scraper))).status_code == 200
