"""The fleet page in Debian's Chromium: log in, see the nodes with the right badges, stop a node and
watch its badge turn degraded then offline without a reload; a viewer changes nothing and a form
post without its CSRF token is refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.browser import Dashboard, Heartbeats, log_in, watch_console

pytestmark = pytest.mark.slow


def badge(page: Any, node_id: str) -> Any:
    return page.locator(f'article[data-node="{node_id}"] .badge')


def test_a_stopped_node_turns_degraded_then_offline(dashboard: Dashboard, browser: Any) -> None:
    from playwright.sync_api import expect

    for node in ("lab-geiger-01", "lab-climate-01", "spare-01"):
        dashboard.add_node(node)
    beats = Heartbeats(
        dashboard.url, {k: v for k, v in dashboard.tokens.items() if k != "spare-01"}
    )
    beats.start()
    try:
        page = browser.new_page()
        errors = watch_console(page)
        log_in(page, dashboard.url, "root")
        expect(badge(page, "lab-geiger-01")).to_have_text("online")
        expect(badge(page, "lab-climate-01")).to_have_text("online")
        expect(badge(page, "spare-01")).to_have_text("unknown")
        expect(page.locator("#fleet-summary")).to_contain_text("2 of 3 online")
        page.goto(f"{dashboard.url}/alerts")  # the form the viewer's test expects not to see
        expect(page.locator('form[action="/alerts/silences"]')).to_have_count(1)
        page.goto(f"{dashboard.url}/")
        card = page.locator('article[data-node="lab-geiger-01"]')
        expect(card).to_contain_text("Running for")
        expect(card).to_contain_text("10.0.0.7")
        page.evaluate("window.__stillHere = true")  # gone if the page reloads

        beats.stop("lab-geiger-01")  # interval 1 s: degraded after 2 s, offline after 5 s
        expect(badge(page, "lab-geiger-01")).to_have_text("degraded", timeout=10_000)
        expect(badge(page, "lab-geiger-01")).to_have_text("offline", timeout=15_000)
        expect(badge(page, "lab-climate-01")).to_have_text("online")
        assert page.evaluate("window.__stillHere") is True
        expect(page.locator("#fleet-summary")).to_contain_text("1 of 3 online")

        page.fill("input[name=q]", "climate")  # the filter narrows the cards, no reload either
        expect(page.locator("article.node")).to_have_count(1)
        expect(page).to_have_url(re.compile(r"\?q=climate$"))
        assert page.evaluate("window.__stillHere") is True
        assert errors == []
    finally:
        beats.close()


def test_a_viewer_sees_but_cannot_change_and_csrf_less_posts_are_refused(
    dashboard: Dashboard, browser: Any
) -> None:
    from playwright.sync_api import expect

    dashboard.add_node("lab-geiger-01")
    page = browser.new_page()
    errors = watch_console(page)
    log_in(page, dashboard.url, "vera")
    expect(page.locator(".who .role")).to_have_text("viewer")
    expect(page.locator('a[href="/users"]')).to_have_count(0)
    # a form post without the CSRF token, from the page itself (cookies sent): refused
    status = page.evaluate(
        """async () => (await fetch('/logout', {method: 'POST', body: new URLSearchParams({})})).status"""
    )
    assert status == 403
    page.goto(f"{dashboard.url}/users")  # admin only
    expect(page.locator("h1")).to_have_text("403")
    page.goto(f"{dashboard.url}/alerts")  # an admin always sees this form; a viewer never
    expect(page.locator('form[action="/alerts/silences"]')).to_have_count(0)
    page.goto(f"{dashboard.url}/")
    expect(page.locator(".who a").first).to_have_text("vera")  # still logged in
    assert [e for e in errors if "403" not in e] == []
