"""The node page and the charts' data (``/ui/series``, ``/ui/telemetry``) through the ASGI app, on
SQLite and PostgreSQL, with a day of data (``tests/fixtures/fleet_data.py``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from beamwarden.server.records import to_us
from beamwarden.server.user_records import Role
from tests.conftest import Server
from tests.fixtures.fleet_data import CLIMATE, GEIGER, NODE, seed_node
from tests.fixtures.web import logged_in


@pytest.fixture
async def seeded(server: Server) -> Server:
    await seed_node(server.services, server.clock.now())
    await logged_in(server.services, server.client, "vera", Role.VIEWER)
    return server


@pytest.fixture
async def viewer(server: Server) -> Server:
    """A viewer's session and no data: enough to check what the parameters may be."""
    await logged_in(server.services, server.client, "vera", Role.VIEWER)
    return server


async def get_json(server: Server, url: str, status: int = 200) -> Any:
    answer = await server.client.get(url)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    return answer.json()


async def test_the_node_page_shows_identity_status_charts_sensors_and_events(
    seeded: Server,
) -> None:
    page = await seeded.client.get(f"/nodes/{NODE}")
    assert page.status_code == 200, page.text
    html = page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    for fact in ("Kitchen Pi", "pi-kitchen", "192.168.1.20", "2.4.0", "inst-abc123", "home"):
        assert fact in html, fact
    assert "owner" in html
    assert "ann" in html
    assert "rack" in html
    assert 'class="badge ok"' in html  # online: the last heartbeat is now
    assert 'class="age ok"' in html
    assert "0.250 s" in html  # the clock offset
    # the outage 180..150 minutes ago shows as degraded then offline in the 24 h history
    assert html.count('class="st-offline"') == 1
    assert html.count('class="st-degraded"') == 1
    assert "/ui/telemetry?node_id=node-1&amp;metric=cpu_percent" in html
    assert "/ui/telemetry?node_id=node-1&amp;metric=queue_depth" in html
    assert "metric=mem_percent" not in html  # the node does not report it
    assert f"sensor_id={GEIGER}&amp;field=cps&amp;node_id={NODE}" in html
    assert "field=temperature_c" in html
    assert "SBM-20" in html  # a text field's newest value
    assert "node_added" in html
    assert "/activity?node_id=node-1" in html
    assert "/static/charts.js" in html
    assert "/static/vendor/uPlot.iife.min.js" in html
    assert "<script>" not in html
    assert "style=" not in html


async def test_an_unknown_node_is_a_404_page_and_a_bad_id_a_400(seeded: Server) -> None:
    missing = await seeded.client.get("/nodes/no-such-node")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "no-such-node" in missing.text
    bad = await seeded.client.get("/nodes/Not%20An%20Id")
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("text/html")


async def test_telemetry_series_is_bucketed_to_the_width(seeded: Server) -> None:
    body = await get_json(
        seeded, f"/ui/telemetry?node_id={NODE}&metric=cpu_percent&range=1h&width=60"
    )
    assert body["bucket_s"] == 60
    assert len(body["t"]) <= 60
    assert body["until"] == seeded.clock.now().timestamp()
    assert body["until"] - body["since"] == 3600
    # one heartbeat a minute: each bucket holds one, cpu = minutes ago % 60
    assert body["points"] == len(body["t"])
    newest = body["t"][-1]
    assert body["avg"][-1] == body["min"][-1] == body["max"][-1]
    assert body["avg"][-1] == (int(body["until"] - newest) // 60) % 60
    assert set(body) >= {"t", "avg", "min", "max", "since", "until", "bucket_s"}


async def test_range_selection_changes_the_data(seeded: Server) -> None:
    base = f"/ui/telemetry?node_id={NODE}&metric=cpu_percent&width=400"
    hour = await get_json(seeded, base + "&range=1h")
    day = await get_json(seeded, base + "&range=24h")
    week = await get_json(seeded, base + "&range=7d")
    assert (hour["bucket_s"], day["bucket_s"], week["bucket_s"]) == (10, 300, 1800)
    assert hour["t"][0] >= hour["since"] - 10
    assert day["t"][0] < hour["since"]
    assert len(day["t"]) > len(hour["t"])
    # a week of a node with a day of data: the same buckets as the day, wider
    assert week["points"] <= 400
    assert week["t"][0] < day["t"][0] + 1800
    now = seeded.clock.now()
    since = int((now - timedelta(hours=4)).timestamp())
    until = int((now - timedelta(hours=2)).timestamp())
    custom = await get_json(seeded, base + f"&since={since}&until={until}")
    assert (custom["since"], custom["until"]) == (since, until)
    assert all(since - custom["bucket_s"] < t < until for t in custom["t"])
    # the outage (180..151 minutes ago) leaves a gap with a null, so the line breaks
    assert None in custom["avg"]
    gap = custom["avg"].index(None)
    assert custom["t"][gap + 1] - custom["t"][gap - 1] > 20 * 60


async def test_sensor_series_is_downsampled_to_the_width(seeded: Server) -> None:
    url = f"/ui/series?node_id={NODE}&sensor_id={GEIGER}&field=cps&range=24h"
    for width in (16, 100, 333, 1000, 4000):
        body = await get_json(seeded, url + f"&width={width}")
        assert len(body["t"]) <= width
        assert body["points"] <= width
        assert body["bucket_s"] * width >= 86_400
    body = await get_json(seeded, url + "&width=100")
    assert body["bucket_s"] == 900  # 24 h / 100 px = 864 s → the next step, 15 min
    middle = len(body["t"]) // 2
    assert (body["min"][middle], body["avg"][middle], body["max"][middle]) == (1.0, 2.0, 3.0)
    climate = await get_json(
        seeded,
        f"/ui/series?node_id={NODE}&sensor_id={CLIMATE}&field=temperature_c&width=50&range=1h",
    )
    assert climate["bucket_s"] == 120
    assert min(v for v in climate["min"] if v is not None) >= 20.0
    assert max(v for v in climate["max"] if v is not None) <= 29.0


async def test_a_fleet_wide_device_series_needs_no_node(seeded: Server) -> None:
    body = await get_json(
        seeded, "/ui/series?sensor_id=ble:A4C138123456&field=battery_pct&range=1h&width=30"
    )
    assert body["points"] > 0
    assert {v for v in body["avg"] if v is not None} == {90.0}


@pytest.mark.parametrize(
    "query",
    [
        "node_id=node-1&metric=cpu_percent",  # no width
        "node_id=node-1&metric=cpu_percent&width=0",
        "node_id=node-1&metric=cpu_percent&width=4001",
        "node_id=node-1&metric=cpu_percent&width=abc",
        "node_id=node-1&metric=cpu_percent&width=100&range=forever",
        "node_id=node-1&metric=cpu_percent&width=100&range=400d",
        "node_id=node-1&metric=cpu_percent&width=100&since=2000&until=1000",
        "node_id=node-1&metric=cpu_percent&width=100&since=-5",
        "node_id=node-1&metric=cpu_percent&width=100&since=1e12",
        "node_id=node-1&metric=cpu_percent&width=100&since=nan",
        "node_id=node-1&metric=cpu_percent&width=100&since=0&until=100000000",
        "node_id=node-1&metric=CPU%20percent&width=100",
        "node_id=Not%20An%20Id&metric=cpu_percent&width=100",
        "metric=cpu_percent&width=100",
    ],
)
async def test_bad_telemetry_parameters_are_400(viewer: Server, query: str) -> None:
    body = await get_json(viewer, f"/ui/telemetry?{query}", status=400)
    assert "error" in body


@pytest.mark.parametrize(
    "query",
    [
        "node_id=node-1&sensor_id=geiger-0&field=Bad-Field&width=100",
        "node_id=node-1&sensor_id=geiger-0&field=cps&width=100000",
        "sensor_id=geiger-0&field=cps&width=100",  # a node's sensor needs its node
        "node_id=node-1&sensor_id=&field=cps&width=100",
        "node_id=node-1&sensor_id=geiger-0&field=cps&width=100&range=0s",
    ],
)
async def test_bad_series_parameters_are_400(viewer: Server, query: str) -> None:
    await get_json(viewer, f"/ui/series?{query}", status=400)


async def test_an_unknown_series_is_empty_not_an_error(viewer: Server) -> None:
    body = await get_json(viewer, "/ui/series?node_id=node-1&sensor_id=nothing&field=cps&width=100")
    assert body["t"] == []
    assert body["points"] == 0
    body = await get_json(viewer, "/ui/telemetry?node_id=ghost&metric=cpu_percent&width=100")
    assert body["t"] == []


async def test_panels_need_a_session(server: Server) -> None:
    await seed_node(server.services, server.clock.now(), hours=1)
    for url in (
        f"/ui/telemetry?node_id={NODE}&metric=cpu_percent&width=100",
        f"/ui/series?node_id={NODE}&sensor_id={GEIGER}&field=cps&width=100",
    ):
        answer = await server.client.get(url)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "login_required"
    page = await server.client.get(f"/nodes/{NODE}")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")


async def test_the_status_history_follows_the_clock(seeded: Server) -> None:
    seeded.clock.advance(10 * 60)  # no heartbeat for 10 minutes at a 60 s interval: offline
    html = (await seeded.client.get(f"/nodes/{NODE}")).text
    assert 'class="badge bad"' in html
    assert html.count('class="st-offline"') == 2
    rects = re.findall(r'<rect x="([0-9.]+)" y="0" width="([0-9.]+)"', html)
    assert sum(float(w) for _, w in rects) == pytest.approx(1000, abs=0.01)
    assert to_us(seeded.clock.now()) > 0


async def test_every_dashboard_page_and_panel_needs_a_session(server: Server) -> None:
    """Walk the route table: every GET of the dashboard (not the login form, not static files)
    sends a stranger to the login form, or answers a panel's script 401 — even without its
    parameters (the session is checked before they are)."""
    from fastapi.routing import APIRoute

    from beamwarden.server.web import ROUTERS

    checked = set()
    for route in (r for router in ROUTERS for r in router.routes):
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if route.path in ("/login",):
            continue
        path = re.sub(r"\{[^}]+\}", "node-1", route.path)
        answer = await server.client.get(path)
        expected = 401 if path.startswith("/ui/") else 303
        assert answer.status_code == expected, (path, answer.status_code)
        checked.add(route.path)
    assert {"/nodes/{node_id}", "/sensors", "/ui/series", "/ui/telemetry"} <= checked


async def test_a_geiger_rate_gets_the_garwood_band(seeded: Server) -> None:
    from beamwarden.fleet.poisson import rate_interval

    url = f"/ui/series?node_id={NODE}&sensor_id={GEIGER}&field=cps&range=1h&width=60&band=garwood"
    body = await get_json(seeded, url)
    assert body["band"] == "garwood"
    assert body["bucket_s"] == 60
    middle = len(body["t"]) // 2
    # a minute holds 6 readings of 1 and 3 CPS: 12 counts in 6 s
    expected = rate_interval(12, 6, 0.95)
    assert body["avg"][middle] == 2.0
    assert body["lo"][middle] == pytest.approx(expected.lower)
    assert body["hi"][middle] == pytest.approx(expected.upper)
    assert all(
        lo <= avg <= hi for lo, avg, hi in zip(body["lo"], body["avg"], body["hi"], strict=True)
    )
    bad = await seeded.client.get(url.replace("garwood", "wide"))
    assert bad.status_code == 400
    page = (await seeded.client.get(f"/nodes/{NODE}")).text
    assert "field=cps&amp;node_id=node-1&amp;band=garwood" in page
