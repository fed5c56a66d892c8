"""The fleet page through the ASGI app, on both stores: cards, "N of M online", filters, paging."""

from __future__ import annotations

import re

from beamwarden.server.records import OperatorFields
from beamwarden.server.web.fleet import PAGE_SIZE
from tests.conftest import Server, auth
from tests.fixtures.web import logged_in


def beat(node_id: str, interval: float = 10) -> dict[str, object]:
    return {
        "node_id": node_id,
        "role": "pi-log",
        "timestamp": "2026-11-22T12:00:00Z",
        "uptime_seconds": 4 * 3600 + 23 * 60,
        "software_version": "2.4.1",
        "ip_address": "10.0.0.7",
        "interval_seconds": interval,
        "instance_id": f"inst-{node_id}",
        "state": "active",
        "metrics": {},
        "tags": {},
    }


def cards(html: str) -> list[str]:
    return re.findall(r'data-node="([^"]+)"', html)


async def fleet(server: Server) -> None:
    for i, (role, site) in enumerate(
        [("pi-log", "lab"), ("pi-log", "roof"), ("mqtt-bridge", "lab"), ("pi-log", "lab")]
    ):
        node_id = f"node-{i}"
        token = await server.node(node_id, role)
        await server.services.registry.set_operator_fields(
            node_id, OperatorFields(site=site, operator_tags={"rack": str(i % 2)})
        )
        if i < 3:
            r = await server.client.post("/api/telemetry", json=beat(node_id), headers=auth(token))
            assert r.status_code == 202


async def test_cards_show_status_uptime_and_lease(server: Server) -> None:
    await fleet(server)
    await logged_in(server.services, server.client, "root")
    page = await server.client.get("/")
    assert page.status_code == 200
    assert cards(page.text) == ["node-0", "node-1", "node-2", "node-3"]
    assert "3 of 4 online" in page.text
    assert "Running for 4h 23m" in page.text
    assert "inst-node-0" in page.text  # the node lease's holder
    server.clock.advance(25)  # interval 10 s: degraded after 20 s
    panel = await server.client.get("/ui/fleet")
    assert "0 of 4 online" in panel.text
    assert panel.text.count('data-status="degraded"') == 3
    assert "<html" not in panel.text  # a fragment, swapped into the page


async def test_filters(server: Server) -> None:
    await fleet(server)
    await logged_in(server.services, server.client, "root")

    async def shown(**params: str) -> list[str]:
        r = await server.client.get("/ui/fleet", params=params)
        assert r.status_code == 200, r.text
        return cards(r.text)

    assert await shown(role="mqtt-bridge") == ["node-2"]
    assert await shown(site="lab") == ["node-0", "node-2", "node-3"]
    assert await shown(status="unknown") == ["node-3"]
    assert await shown(status="online", site="lab") == ["node-0", "node-2"]
    assert await shown(tag="rack=1") == ["node-1", "node-3"]
    assert await shown(q="NODE-2") == ["node-2"]
    assert await shown(q="nothing-like-it") == []
    r = await server.client.get("/ui/fleet", params={"site": "lab"})
    assert "3 match the filter" in r.text


async def test_bad_filters_are_400_not_500(server: Server) -> None:
    await logged_in(server.services, server.client, "root")
    for params in (
        {"tag": "no-equals"},
        {"status": "sleepy"},
        {"after": "garbage"},
        {"q": "x" * 500},
    ):
        page = await server.client.get("/", params=params)
        assert page.status_code == 400, params
        assert "Traceback" not in page.text


async def test_pages_of_cards(server: Server) -> None:
    for i in range(PAGE_SIZE + 5):
        await server.node(f"n-{i:03d}")
    await logged_in(server.services, server.client, "root")
    first = await server.client.get("/")
    assert len(cards(first.text)) == PAGE_SIZE
    more = re.search(r'href="\?after=([^"]+)" rel="next"', first.text)
    assert more
    second = await server.client.get("/", params={"after": more.group(1).replace("&amp;", "&")})
    assert cards(second.text) == [f"n-{i:03d}" for i in range(PAGE_SIZE, PAGE_SIZE + 5)]
    assert 'rel="next"' not in second.text
