"""Rename a device in the browser and see one continuous series (issue 8): a thermometer heard by a
gateway gets a name and a room on the devices page; the sensors page then shows one card under the
new name whose chart holds the readings from before and after the rename."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamwarden.server.device_records import SeenDevice
from beamwarden.server.records import to_us
from beamwarden.server.services.container import Services
from beamwarden.server.user_records import Role
from tests.fixtures.browser import log_in, watch_console
from tests.fixtures.live_server import LiveServer, live_server
from tests.fixtures.web import PASSWORD

pytestmark = pytest.mark.slow

DEVICE = "ble:A4C138F1E2D3"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as server:
        yield server


def test_a_rename_keeps_one_series(browser: Any, live: LiveServer) -> None:
    from playwright.sync_api import expect

    async def setup(s: Services) -> str:
        assert s.users is not None
        assert s.devices is not None
        await s.users.add_user("root", PASSWORD, Role.ADMIN)
        _, issued = await s.registry.add_node("gw-kitchen", "mqtt-bridge", relay=True)
        await s.devices.observe([SeenDevice(DEVICE, to_us(s.clock.now()), "gw-kitchen")])
        await s.devices.flush_seen()
        return issued.secret

    token = live.call(setup)
    now = live.services.clock.now()

    def reading(value: float, seconds_ago: float) -> None:
        body = {
            "node_id": "gw-kitchen",
            "sensor_type": "climate",
            "sensor_id": DEVICE,
            "payload": {"temperature_c": value},
            "timestamp": (now - timedelta(seconds=seconds_ago)).isoformat(),
        }
        r = httpx.post(
            f"{live.url}/api/readings", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text

    for i in range(5):  # before the rename
        reading(20.0 + i / 10, 600 - i * 60)

    page = browser.new_page()
    errors = watch_console(page)
    log_in(page, live.url, "root")
    page.goto(f"{live.url}/devices")
    page.fill(f'input[aria-label="name of {DEVICE}"]', "Fridge top")
    page.fill(f'input[aria-label="room of {DEVICE}"]', "kitchen")
    page.locator(f'form[action="/devices/{DEVICE}"] button[type=submit]').first.click()
    expect(page.locator(".flash")).to_contain_text("Fridge top")

    for i in range(3):  # after it
        reading(22.0 + i / 10, 120 - i * 60)

    page.goto(f"{live.url}/sensors")
    cards = page.locator("section.sensor", has_text=DEVICE)
    expect(cards).to_have_count(1)  # one device, one card: no ghost under the old name
    expect(cards.first).to_contain_text("Fridge top")
    expect(cards.first).to_contain_text("kitchen")
    url = cards.first.locator(".chart").first.get_attribute("data-series-url")
    assert url is not None
    assert "field=temperature_c" in url
    series = page.evaluate(
        "async (u) => (await fetch(u + (u.includes('width=') ? '' : '&width=800') + '&range=1h')).json()",
        url,
    )
    values = [v for v in series["avg"] if v is not None]
    assert len(values) == 8, series  # five before the rename, three after: one series
    assert min(values) == pytest.approx(20.0)
    assert max(values) == pytest.approx(22.2)
    assert errors == []
