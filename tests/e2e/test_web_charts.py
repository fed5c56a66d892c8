"""The charts in a real browser (Debian's Chromium through Playwright) against a real server
(uvicorn in a thread, SQLite): log in, open a node page, see uPlot draw, click "7 d" and see the
chart fetch and draw the week, choose a custom range, look at it on a phone. Any console error
fails the test — a Content-Security-Policy violation shows there."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from beamwarden.server.services.container import Services
from beamwarden.server.user_records import Role
from tests.fixtures.browser import log_in
from tests.fixtures.fleet_data import NODE, seed_node
from tests.fixtures.live_server import LiveServer, live_server
from tests.fixtures.web import PASSWORD

pytestmark = pytest.mark.slow

CPS_CHART = '.chart[data-series-url*="field=cps"]'


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path) as server:
        now = server.services.clock.now()
        server.call(lambda s: seed_node(s, now, hours=24))

        async def add_user(s: Services) -> None:
            assert s.users is not None
            await s.users.add_user("vera", PASSWORD, Role.VIEWER)

        server.call(add_user)
        yield server


def watched_page(browser: Any, live: LiveServer, errors: list[str], **options: Any) -> Any:
    """A new page, logged in as the viewer, whose console errors, uncaught exceptions and failed
    requests land in ``errors``."""
    page = browser.new_page(**options)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    log_in(page, live.url, "vera")
    return page


def drawn_pixels(page: Any, selector: str) -> int:
    """How many pixels of the chart's canvas are not blank."""
    count: int = page.eval_on_selector(
        selector + " canvas",
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""",
    )
    return count


def test_a_node_chart_draws_and_the_range_buttons_refetch(browser: Any, live: LiveServer) -> None:
    errors: list[str] = []
    page = watched_page(browser, live, errors, viewport={"width": 1280, "height": 900})
    page.goto(f"{live.url}/nodes/{NODE}")
    chart = page.locator(CPS_CHART)
    page.wait_for_selector(CPS_CHART + "[data-draws]")
    assert chart.locator("canvas").count() == 1
    assert drawn_pixels(page, CPS_CHART) > 500
    assert "range=24h" in (chart.get_attribute("data-last-url") or "")
    status = chart.locator(".chart-status").inner_text()
    assert "buckets of" in status
    fetches = int(chart.get_attribute("data-fetches") or 0)
    draws = int(chart.get_attribute("data-draws") or 0)

    page.click("[data-range-button='7d']")
    page.wait_for_function(
        """([sel, n]) => Number(document.querySelector(sel).dataset.draws) > n""",
        arg=[CPS_CHART, draws],
    )
    assert int(chart.get_attribute("data-fetches") or 0) == fetches + 1
    url = chart.get_attribute("data-last-url") or ""
    assert "range=7d" in url
    width = int(url.split("width=")[1].split("&")[0])
    assert 300 < width <= 1280
    assert page.locator("[data-range-button='7d']").get_attribute("aria-pressed") == "true"
    week = page.evaluate(f"fetch({url!r}).then(r => r.json())")
    assert week["until"] - week["since"] == 7 * 86_400
    assert len(week["t"]) <= width

    now = datetime.now(UTC)
    local = page.evaluate("new Date().getTimezoneOffset()")
    start = (now - timedelta(hours=5, minutes=local)).strftime("%Y-%m-%dT%H:%M")
    end = (now - timedelta(hours=4, minutes=local)).strftime("%Y-%m-%dT%H:%M")
    draws = int(chart.get_attribute("data-draws") or 0)
    page.fill("[data-range-custom] input[name=from]", start)
    page.fill("[data-range-custom] input[name=to]", end)
    page.click("[data-range-custom] button[type=submit]")
    page.wait_for_function(
        """([sel, n]) => Number(document.querySelector(sel).dataset.draws) > n""",
        arg=[CPS_CHART, draws],
    )
    custom = chart.get_attribute("data-last-url") or ""
    assert "since=" in custom
    assert "until=" in custom
    assert "range=" not in custom

    page.goto(f"{live.url}/sensors")
    page.wait_for_selector(CPS_CHART + "[data-draws]")
    assert drawn_pixels(page, CPS_CHART) > 500
    assert errors == []


def test_charts_fit_a_phone(browser: Any, live: LiveServer) -> None:
    errors: list[str] = []
    page = watched_page(browser, live, errors, viewport={"width": 390, "height": 844})
    page.goto(f"{live.url}/nodes/{NODE}")
    page.wait_for_selector(CPS_CHART + "[data-draws]")
    box = page.locator(CPS_CHART + " canvas").bounding_box()
    assert box is not None
    assert box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert errors == []
