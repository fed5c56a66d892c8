"""Fleet listings (``services.fleet_views``, ``GET /api/nodes``): the fast path gives the same node
records as the registry's one-node view, filters, a status filter that pages without gaps, counts,
lease holders and last reading times. SQLite and PostgreSQL, fake clock."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from beamwarden.protocol import NodeStatus, Scope
from beamwarden.server.api.views import node_record
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import NodeFilter, OperatorFields
from beamwarden.server.services.fleet_views import StatusCounts
from beamwarden.server.services.pagination import encode_cursor
from tests.conftest import START, Server, auth

ONLINE, DEGRADED, OFFLINE, UNKNOWN = (
    NodeStatus.ONLINE,
    NodeStatus.DEGRADED,
    NodeStatus.OFFLINE,
    NodeStatus.UNKNOWN,
)


def beat(node_id: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "node_id": node_id,
        "role": "pi-log",
        "timestamp": START.isoformat(),
        "uptime_seconds": 12.5,
        "software_version": "2.0.1",
        "ip_address": "192.168.1.20",
        "interval_seconds": 10,
        "instance_id": f"i-{node_id}",
        "state": "active",
    }
    body.update(over)
    return body


async def send(server: Server, token: str, node_id: str, **over: Any) -> None:
    r = await server.client.post("/api/telemetry", json=beat(node_id, **over), headers=auth(token))
    assert r.status_code == 202, r.text


async def fleet(server: Server) -> str:
    """Seven nodes, interval 10 s, statuses after the clock's moves (a hub token sends all):

    a-0 online (flushed), a-1 online (not yet flushed), b-2 degraded, b-3 offline, c-4 unknown,
    c-5 online with tags and inventory, c-6 offline and revoked."""
    hub = await server.node("hub", role="hub", relay=True)
    for i, name in enumerate(["a-0", "a-1", "b-2", "b-3", "c-4", "c-5", "c-6"]):
        await server.node(name, role="geiger" if i % 2 else "pi-log")
    await send(server, hub, "b-3")
    await send(server, hub, "c-6")
    await server.services.heartbeats.flush()
    server.clock.advance(40)  # b-3, c-6: 40 s > 5 × 10 s after the next 20 s
    await send(server, hub, "b-2")
    await server.services.heartbeats.flush()
    server.clock.advance(20)  # b-2: 20 s old, 20 < age ≤ 50: degraded; b-3 60 s: offline
    await send(server, hub, "a-0")
    await send(server, hub, "c-5", software_version="2.1.0", uptime_seconds=3600.0)
    await server.services.heartbeats.flush()
    await send(server, hub, "a-1")  # only in memory: the listing must still see it
    await server.services.registry.set_operator_fields(
        "c-5",
        OperatorFields(display_name="Kitchen Pi", site="home", operator_tags={"rack": "r7"}),
    )
    await server.services.registry.set_operator_fields("b-2", OperatorFields(site="home"))
    await server.services.registry.revoke("c-6")
    server.clock.advance(1)
    return hub


async def listed(server: Server, reader: str, query: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        r = await server.client.get(f"/api/nodes?limit=2{query}{cursor}", headers=auth(reader))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        items += body["items"]
        if not body["next_cursor"]:
            return items
        cursor = f"&cursor={body['next_cursor']}"


async def test_the_list_gives_the_records_the_registry_gives(server: Server) -> None:
    await fleet(server)
    reader = await server.user(Scope.READ)
    items = await listed(server, reader)
    assert [n["node_id"] for n in items] == ["a-0", "a-1", "b-2", "b-3", "c-4", "c-5", "c-6", "hub"]
    registry = server.services.registry
    for item in items:
        row = await server.services.store.get_node(item["node_id"])
        assert row is not None
        expected = node_record(registry.view(row)).model_dump(mode="json")
        assert item == expected, item["node_id"]
    status = {n["node_id"]: n["status"] for n in items}
    assert status == {
        "a-0": "online",
        "a-1": "online",
        "b-2": "degraded",
        "b-3": "offline",
        "c-4": "unknown",
        "c-5": "online",
        "c-6": "offline",
        "hub": "unknown",
    }
    c5 = next(n for n in items if n["node_id"] == "c-5")
    assert c5["software_version"] == "2.1.0"
    assert c5["operator_tags"] == {"rack": "r7"}
    assert c5["running_since"] == "2026-11-22T11:01:00Z"  # its heartbeat at 12:01:00 - 3600 s


async def test_the_page_json_is_the_pages_encoding_as_time_and_nodes_change(
    server: Server,
) -> None:
    """``page_json`` keeps fragments of each node's JSON between listings: byte for byte what
    msgspec makes of ``page``, while statuses age, nodes change, heartbeats arrive and flush."""
    hub = await fleet(server)
    views = server.services.fleet
    encode = msgspec.json.Encoder().encode

    async def same(limit: int) -> None:
        cursor: str | None = None
        while True:
            page = await views.page(limit=limit, cursor=cursor)
            body = await views.page_json(limit=limit, cursor=cursor)
            assert body == encode({"items": page.items, "next_cursor": page.next_cursor})
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    await same(3)
    await same(100)  # from the kept fragments
    tags = {"status": "x", "heartbeat_age_seconds": "1", "running_since": "n", "a": '",\\'}
    await server.services.registry.set_operator_fields(
        "a-0",
        OperatorFields(
            display_name='"status":"online" (a, b) \\ c',
            site="",
            room=" ",
            operator_tags=tags,
        ),
    )
    await same(100)
    for step in (15, 20, 40):  # a-0, a-1, c-5: online, degraded, offline
        server.clock.advance(step)
        await same(3)
    await send(server, hub, "a-0", uptime_seconds=99.25)  # in memory only
    await same(100)
    await server.services.heartbeats.flush()
    await same(100)
    server.clock.advance(-1000)  # heartbeats from the future: age 0, online
    await same(100)
    past_the_end = encode_cursor("nodes", ["zzz"])
    assert await views.page_json(cursor=past_the_end) == b'{"items":[],"next_cursor":null}'


async def test_filters(server: Server) -> None:
    await fleet(server)
    views = server.services.fleet

    async def ids(flt: NodeFilter, **kw: Any) -> list[str]:
        return [n.node_id for n in (await views.page(flt, limit=100, **kw)).items]

    assert await ids(NodeFilter(role="geiger")) == ["a-1", "b-3", "c-5"]
    assert await ids(NodeFilter(site="home")) == ["b-2", "c-5"]
    assert await ids(NodeFilter(tag=("rack", "r7"))) == ["c-5"]
    assert await ids(NodeFilter(tag=("rack", "r8"))) == []
    assert await ids(NodeFilter(search="KITCHEN")) == ["c-5"]  # display name, any case
    assert await ids(NodeFilter(search="c-")) == ["c-4", "c-5", "c-6"]
    assert await ids(NodeFilter(search="%")) == []  # a wildcard is a character
    assert await ids(NodeFilter(search="_")) == []
    assert await ids(NodeFilter(include_revoked=False, search="c-")) == ["c-4", "c-5"]
    assert await ids(NodeFilter(role="pi-log"), statuses={ONLINE}) == ["a-0"]
    assert await ids(NodeFilter(), statuses={OFFLINE, UNKNOWN}) == ["b-3", "c-4", "c-6", "hub"]


async def test_a_reported_tag_matches_too(server: Server) -> None:
    key = await server.user(Scope.ENROL)
    reg = {
        "node_id": "t-1",
        "role": "pi-log",
        "hostname": "pi-attic",
        "ip_address": "10.9.8.7",
        "software_version": "2.0.1",
        "tags": {"model": "pi4"},
    }
    r = await server.client.post("/api/nodes/register", json=reg, headers=auth(key))
    assert r.status_code == 201, r.text
    page = await server.services.fleet.page(NodeFilter(tag=("model", "pi4")))
    assert [n.node_id for n in page.items] == ["t-1"]
    assert page.items[0].reported_tags == {"model": "pi4"}
    by_host = await server.services.fleet.page(NodeFilter(search="attic"))
    by_ip = await server.services.fleet.page(NodeFilter(search="10.9.8"))
    assert [n.node_id for n in by_host.items] == [n.node_id for n in by_ip.items] == ["t-1"]


async def test_a_status_filter_pages_without_gaps_or_repeats(server: Server) -> None:
    await fleet(server)
    views = server.services.fleet
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await views.page(statuses={OFFLINE, UNKNOWN, DEGRADED}, limit=2, cursor=cursor)
        seen += [n.node_id for n in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["b-2", "b-3", "c-4", "c-6", "hub"]
    assert pages == 3


async def test_counts_n_of_m_online(server: Server) -> None:
    await fleet(server)
    views = server.services.fleet
    assert await views.counts() == StatusCounts(online=3, degraded=1, offline=2, unknown=2)
    counts = await views.counts(NodeFilter(site="home"))
    assert (counts.of(ONLINE), counts.total) == (1, 2)
    page = await views.page(NodeFilter(role="geiger"), statuses={ONLINE}, counts=True)
    assert [n.node_id for n in page.items] == ["a-1", "c-5"]
    assert page.counts == StatusCounts(online=2, offline=1)  # the status filter left out
    server.clock.advance(3600)
    assert await views.counts() == StatusCounts(offline=6, unknown=2)


async def test_lease_holders_and_last_readings_of_a_page(server: Server) -> None:
    hub = await fleet(server)
    reading = {
        "node_id": "a-0",
        "sensor_type": "climate",
        "sensor_id": "bme280",
        "payload": {"temperature_c": 20.5},
        "timestamp": START.isoformat(),
        "reading_id": "q:1",
    }
    r = await server.client.post("/api/readings", json=[reading], headers=auth(hub))
    assert r.status_code == 200, r.text
    page = await server.services.fleet.page(
        NodeFilter(search="a-"), lease_holders=True, last_readings=True
    )
    assert {k: h.holder_id for k, h in page.lease_holders.items()} == {
        "a-0": "i-a-0",
        "a-1": "i-a-1",
    }
    assert page.last_reading_at == {"a-0": START}
    plain = await server.services.fleet.page(NodeFilter(search="a-"))
    assert (plain.lease_holders, plain.last_reading_at, plain.counts) == ({}, {}, None)


async def test_bad_input_is_refused_plainly(server: Server) -> None:
    views = server.services.fleet
    with pytest.raises(InvalidRequest):
        await views.page(NodeFilter(tag=('rack"', "x")))
    with pytest.raises(InvalidRequest):
        await views.page(cursor="not-a-cursor")
    with pytest.raises(InvalidRequest):
        await views.page(limit=0)
    reader = await server.user(Scope.READ)
    r = await server.client.get("/api/nodes?cursor=xyz", headers=auth(reader))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"
