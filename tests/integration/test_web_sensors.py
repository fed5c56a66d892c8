"""The sensors page through the ASGI app, on SQLite and PostgreSQL: the Geiger view's figures and
Garwood interval over the chosen window, climate sensors, registry names of fleet-wide devices."""

from __future__ import annotations

import re

import pytest

from beamwarden.fleet.poisson import rate_interval
from beamwarden.server.user_records import Role
from tests.conftest import Server
from tests.fixtures.fleet_data import BLE, CLIMATE, GEIGER, NODE, seed_node
from tests.fixtures.web import logged_in


@pytest.fixture
async def seeded(server: Server) -> Server:
    await seed_node(server.services, server.clock.now(), hours=2)
    await logged_in(server.services, server.client, "vera", Role.VIEWER)
    return server


def figures(html: str) -> list[str]:
    return re.findall(r'<span class="figure">([^<]+)</span>', html)


async def test_the_geiger_view_summarises_the_chosen_window(seeded: Server) -> None:
    page = await seeded.client.get("/sensors?window=10m")
    assert page.status_code == 200, page.text
    html = page.text
    # 10 minutes + the reading at "now": 61 readings of 1 and 3 CPS, 31 of them 3 (k even)
    mean = (31 * 3 + 30 * 1) / 61
    cps, cpm, dose, device = figures(html)
    assert cps == f"{mean:.3f}"
    assert cpm == f"{mean * 60:.1f}"
    assert device == "0.100"  # the counter's own µSv/h
    assert float(dose) > 0  # SBM-20's factor
    interval = rate_interval(mean * 61, 61, 0.95)
    assert f"{interval.lower:.3f} – {interval.upper:.3f}" in html
    assert "61 readings in the last 10m" in html
    assert "Garwood" in html
    assert f"sensor_id={GEIGER}&amp;field=cps&amp;node_id={NODE}" in html


async def test_the_window_changes_the_figures(seeded: Server) -> None:
    minute = figures((await seeded.client.get("/sensors?window=60s")).text)
    hour = (await seeded.client.get("/sensors?window=1h")).text
    assert "361 readings in the last 1h" in hour
    assert minute[0] != figures(hour)[0]  # 7 readings vs 361: different means


async def test_climate_sensors_and_registry_names(seeded: Server) -> None:
    html = (await seeded.client.get("/sensors")).text
    assert CLIMATE in html
    assert "field=temperature_c" in html
    assert "Hall thermometer" in html  # the registry's name of the BLE device …
    assert "room hall" in html
    assert f"sensor_id={BLE.replace(':', '%3A')}&amp;field=battery_pct" in html  # … its charts
    assert f"heard by {NODE}" in html
    assert "90.00" in html  # its battery, newest value


@pytest.mark.parametrize("window", ["24h", "7d", "bogus", "-1s", ""])
async def test_a_window_not_offered_is_a_400(seeded: Server, window: str) -> None:
    page = await seeded.client.get(f"/sensors?window={window}")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")


async def test_an_empty_fleet_has_an_empty_sensors_page(server: Server) -> None:
    await logged_in(server.services, server.client, "vera", Role.VIEWER)
    page = await server.client.get("/sensors")
    assert page.status_code == 200
    assert "No Geiger counter has sent readings." in page.text
