"""The dashboard's admin pages through the ASGI app (SQLite and PostgreSQL): devices, activity,
account and users. Every state-changing form needs its CSRF token and (but for your own tokens
and password) an admin; a viewer sees the pages without their edit controls."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from fastapi.routing import APIRoute

from beamwarden.protocol import Scope
from beamwarden.server.device_records import SeenDevice
from beamwarden.server.records import to_us
from beamwarden.server.services.devices import DeviceService
from beamwarden.server.user_records import Role
from beamwarden.server.web import account, activity, alerts, devices, diagnostics
from tests.conftest import START, Server, auth
from tests.fixtures.web import PASSWORD, add_user, logged_in, login

KITCHEN = "ble:A4C138123456"
ATTIC = "ble:A4C138654321"


def registry(server: Server) -> DeviceService:
    devices = server.services.devices
    assert devices is not None
    return devices


async def heard(server: Server, *device_ids: str, source: str = "omg-kitchen") -> None:
    await registry(server).observe(
        [SeenDevice(d, to_us(server.clock.now()), source, model="H5075") for d in device_ids]
    )
    await registry(server).flush_seen()


@asynccontextmanager
async def another_client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=server.app, client=("127.0.0.2", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def flash(html: str) -> str | None:
    match = re.search(r'<p class="flash (?:ok|bad)" role="\w+">([^<]*)</p>', html)
    return match.group(1) if match else None


# --- every POST of the pages ------------------------------------------------------------------

#: (path, form) of every admin form, with valid input
ADMIN_POSTS = [
    (f"/devices/{KITCHEN}", {"name": "Kitchen"}),
    ("/alerts/silences", {"duration": "1h"}),
    ("/alerts/silences/1/expire", {}),
    ("/alerts/rules", {"document": "{}"}),
    ("/alerts/test", {}),
    ("/users", {"username": "carol", "role": "viewer", "password": PASSWORD}),
    ("/users/root/role", {"role": "viewer"}),
    ("/users/root/disabled", {"disabled": "true"}),
]
#: forms anyone logged in may use (their own tokens and password)
OWN_POSTS = [
    ("/account/tokens", {"scope": "read"}),
    ("/account/tokens/1/revoke", {}),
    ("/account/password", {"current": PASSWORD, "new": "n" * 12, "confirm": "n" * 12}),
]


def web_post_paths() -> list[str]:
    """The POST routes of the pages tested here."""
    modules = (account, activity, alerts, devices, diagnostics)
    return [
        route.path
        for module in modules
        for route in module.router.routes
        if isinstance(route, APIRoute) and "POST" in (route.methods or ())
    ]


def test_the_list_of_forms_covers_every_post_route() -> None:
    listed = {re.sub(r"/(ble:\w+|root|1)(?=/|$)", "/{x}", p) for p, _ in ADMIN_POSTS + OWN_POSTS}
    routes = {re.sub(r"\{\w+\}", "{x}", p) for p in web_post_paths()}
    assert routes == listed


async def test_every_post_without_the_csrf_token_is_refused(server: Server) -> None:
    await heard(server, KITCHEN)
    csrf = await logged_in(server.services, server.client, "root")
    for path, form in ADMIN_POSTS + OWN_POSTS:
        r = await server.client.post(path, data=form)
        assert r.status_code == 403, path
        assert "CSRF" in r.text
        r = await server.client.post(path, data={**form, "csrf_token": csrf[::-1]})
        assert r.status_code == 403, path
    device = (await registry(server).get(KITCHEN)).row
    assert device.name is None  # nothing changed


async def test_a_viewer_may_change_nothing_and_sees_no_edit_controls(server: Server) -> None:
    await heard(server, KITCHEN)
    await add_user(server.services, "root")
    csrf = await logged_in(server.services, server.client, "vera", Role.VIEWER)
    for path, form in ADMIN_POSTS:
        r = await server.client.post(path, data={**form, "csrf_token": csrf})
        assert r.status_code == 403, path
        assert "only an admin" in r.text
    for path in ("/devices", f"/devices/{KITCHEN}", "/alerts", "/account", "/activity"):
        page = await server.client.get(path)
        assert page.status_code == 200, path
        actions = re.findall(r'<form method="post" action="([^"]+)"', page.text)
        assert [a for a in actions if not a.startswith(("/logout", "/account"))] == [], path
    assert 'name="document"' not in (await server.client.get("/alerts")).text
    assert (await server.client.get("/users")).status_code == 403
    assert 'href="/users"' not in (await server.client.get("/devices")).text
    assert (await registry(server).get(KITCHEN)).row.name is None


# --- devices ----------------------------------------------------------------------------------


async def test_devices_page_lists_the_registry(server: Server) -> None:
    await heard(server, KITCHEN, ATTIC)
    server.clock.advance(90)
    await logged_in(server.services, server.client, "root")
    page = await server.client.get("/devices")
    assert page.status_code == 200
    assert page.text.count("<tr data-device=") == 2
    row = page.text.split(f'<tr data-device="{KITCHEN}">')[1].split("</tr>")[0]
    assert "H5075" in row
    assert "1m 30s ago" in row
    assert "omg-kitchen" in row
    assert "unclaimed" in row
    assert f'href="/devices/{KITCHEN}"' in row


async def test_rename_through_the_page_applies_live_and_keeps_one_series(server: Server) -> None:
    token = await server.node("gw-1", relay=True)
    await heard(server, KITCHEN)
    csrf = await logged_in(server.services, server.client, "root")
    admin = await server.user(Scope.ADMIN)

    async def reading(value: float, seconds: int) -> None:
        body = {
            "sensor_type": "climate",
            "sensor_id": KITCHEN,
            "payload": {"temperature_c": value},
            "timestamp": (START + timedelta(seconds=seconds)).isoformat(),
        }
        r = await server.client.post("/api/readings", json=body, headers=auth(token))
        assert r.status_code == 200, r.text

    await reading(20.0, 1)
    r = await server.client.post(
        f"/devices/{KITCHEN}",
        data={
            "name": "  Fridge   top ",
            "room": "Kitchen",
            "site": "Home",
            "csrf_token": csrf,
            "back": "/devices?claimed=no",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/devices?claimed=no"
    page = await server.client.get(r.headers["location"])
    assert flash(page.text) == "Fridge top: name, room, site saved"
    assert (await server.client.get("/devices")).text.count("saved") == 0  # shown once
    await reading(22.0, 2)
    device = (await server.client.get(f"/api/devices/{KITCHEN}", headers=auth(admin))).json()
    assert (device["name"], device["room"], device["site"]) == ("Fridge top", "Kitchen", "Home")
    listed = (await server.client.get("/api/devices", headers=auth(admin))).json()["items"]
    assert [d["name"] for d in listed] == ["Fridge top"]
    series = await server.client.get(
        "/api/series",
        params={
            "sensor_id": KITCHEN,
            "field": "temperature_c",
            "since": START.isoformat(),
            "until": (START + timedelta(minutes=1)).isoformat(),
            "bucket": "60s",
            "agg": "count,min,max",
        },
        headers=auth(admin),
    )
    assert series.status_code == 200, series.text
    (bucket,) = series.json()["items"]
    assert (bucket["count"], bucket["min"], bucket["max"]) == (2, 20.0, 22.0)
    history = await server.client.get(f"/devices/{KITCHEN}")
    assert "Fridge top" in history.text
    assert "session:root" in history.text


async def test_claim_and_unclaim(server: Server) -> None:
    await heard(server, KITCHEN, ATTIC)
    csrf = await logged_in(server.services, server.client, "root")
    unclaimed = await server.client.get("/devices?claimed=no")
    assert unclaimed.text.count("<tr data-device=") == 2
    assert unclaimed.text.count(">Claim</button>") == 2
    r = await server.client.post(f"/devices/{ATTIC}", data={"claimed": "true", "csrf_token": csrf})
    assert r.status_code == 303
    assert (await registry(server).get(ATTIC)).row.claimed
    claimed = await server.client.get("/devices?claimed=yes")
    assert f'<tr data-device="{ATTIC}">' in claimed.text
    assert KITCHEN not in claimed.text
    # the device page's checkbox: a hidden "false" first, the box's "true" after it
    r = await server.client.post(f"/devices/{ATTIC}", data={"claimed": "false", "csrf_token": csrf})
    assert not (await registry(server).get(ATTIC)).row.claimed
    assert r.status_code == 303


async def test_devices_are_paged(server: Server) -> None:
    ids = [f"ble:A4C1380000{i:02X}" for i in range(55)]
    await heard(server, *ids)
    await logged_in(server.services, server.client, "root")
    first = await server.client.get("/devices")
    assert first.text.count("<tr data-device=") == 50
    link = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert link is not None
    second = await server.client.get(link.group(1).replace("&amp;", "&"))
    assert second.text.count("<tr data-device=") == 5
    assert 'rel="next"' not in second.text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "x" * 129}, "the name is longer than 128 characters"),
        ({"room": "a\x00b"}, "the room holds control characters"),
        ({"claimed": "maybe"}, "claimed is true or false"),
        ({}, "nothing to change"),
    ],
)
async def test_bad_device_input_is_a_400_page(
    server: Server, form: dict[str, str], message: str
) -> None:
    await heard(server, KITCHEN)
    csrf = await logged_in(server.services, server.client, "root")
    r = await server.client.post(f"/devices/{KITCHEN}", data={**form, "csrf_token": csrf})
    assert r.status_code == 400
    assert message in r.text
    assert r.headers["content-type"].startswith("text/html")


async def test_an_unknown_device_is_a_404_page(server: Server) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    assert (await server.client.get("/devices/ble:000000000000")).status_code == 404
    r = await server.client.post("/devices/nope", data={"name": "x", "csrf_token": csrf})
    assert r.status_code == 404


# --- activity ---------------------------------------------------------------------------------


async def test_activity_feed_newest_first_with_filters(server: Server) -> None:
    await server.node("node-1")
    server.clock.advance(7200)
    await server.node("node-2")
    await logged_in(server.services, server.client, "root")
    page = await server.client.get("/activity")
    assert page.status_code == 200
    kinds = re.findall(r'class="kind" href="[^"]*">(\w+)<', page.text)
    assert kinds == ["login", "user_added", "node_added", "node_added"]
    assert page.text.index("node-2") < page.text.index("node-1")
    only = await server.client.get("/activity?node=node-1")
    assert "node-2" not in only.text
    assert "node-1" in only.text
    recent = await server.client.get("/activity?kind=node_added&range=1h")
    assert re.findall(r'class="kind" href="[^"]*">(\w+)<', recent.text) == ["node_added"]
    assert "node-2" in recent.text
    since = (START + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    window = await server.client.get(f"/activity?kind=node_added&since={since}")
    assert "node-2" in window.text
    assert "node-1" not in window.text
    panel = await server.client.get("/ui/activity?kind=node_added")
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert panel.text.count("<tr data-event=") == 2


async def test_activity_pages_with_cursors(server: Server) -> None:
    for i in range(60):
        await server.node(f"node-{i:02d}")
    await logged_in(server.services, server.client, "root")
    first = await server.client.get("/activity?kind=node_added")
    assert first.text.count("<tr data-event=") == 50
    assert 'data-refresh-url="/ui/activity"' in first.text
    link = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert link is not None
    second = await server.client.get(link.group(1).replace("&amp;", "&"))
    assert second.text.count("<tr data-event=") == 10
    assert "node-00" in second.text
    assert "node-59" not in second.text
    assert "data-refresh-url" not in second.text  # an older page stays still
    assert "« newest" in second.text


@pytest.mark.parametrize(
    "query",
    ["since=yesterday", "range=2w", "cursor=nope", "since=2026-11-23T00:00&until=2026-11-22T00:00"],
)
async def test_bad_activity_filters_are_a_400_page(server: Server, query: str) -> None:
    await logged_in(server.services, server.client, "root")
    r = await server.client.get(f"/activity?{query}")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")


async def test_the_activity_panel_asks_a_stranger_to_log_in(server: Server) -> None:
    assert (await server.client.get("/ui/activity")).status_code == 401
    assert (await server.client.get("/activity")).status_code == 303


# --- account: personal tokens and password ----------------------------------------------------


async def test_personal_tokens_made_shown_once_and_revoked(server: Server) -> None:
    csrf = await logged_in(server.services, server.client, "vera", Role.VIEWER)
    page = await server.client.get("/account")
    assert re.findall(r'<option value="(\w+)">', page.text) == ["read", "metrics"]
    made = await server.client.post(
        "/account/tokens", data={"name": "grafana", "scope": "read", "csrf_token": csrf}
    )
    assert made.status_code == 201
    secret = re.search(r'<p class="secret" id="new-token">([^<]+)</p>', made.text)
    assert secret is not None
    token = secret.group(1)
    assert (await server.client.get("/api/devices", headers=auth(token))).status_code == 200
    again = await server.client.get("/account")
    assert token not in again.text
    assert "grafana" in again.text
    token_id = re.search(r'<tr data-token="(\d+)">', again.text)
    assert token_id is not None
    r = await server.client.post(
        f"/account/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf}
    )
    assert r.status_code == 303
    assert "revoked" in (flash((await server.client.get("/account")).text) or "")
    assert (await server.client.get("/api/devices", headers=auth(token))).status_code == 401


async def test_a_viewer_cannot_make_an_admin_token_nor_revoke_anothers(server: Server) -> None:
    assert server.services.users is not None
    await add_user(server.services, "root")
    root = await server.services.users.user("root")
    theirs = await server.services.users.issue_token(root, "ci", Scope.ADMIN)
    csrf = await logged_in(server.services, server.client, "vera", Role.VIEWER)
    r = await server.client.post("/account/tokens", data={"scope": "admin", "csrf_token": csrf})
    assert r.status_code == 400
    assert "a viewer may not hold a admin token" in r.text
    r = await server.client.post("/account/tokens", data={"scope": "root", "csrf_token": csrf})
    assert r.status_code == 400
    r = await server.client.post(
        f"/account/tokens/{theirs.row.id}/revoke", data={"csrf_token": csrf}
    )
    assert r.status_code == 403
    assert (await server.client.get("/account")).text.count("<tr data-token=") == 0


async def test_change_your_password(server: Server) -> None:
    csrf = await logged_in(server.services, server.client, "vera", Role.VIEWER)
    wrong = await server.client.post(
        "/account/password",
        data={"current": "not-it-at-all", "new": "n" * 12, "confirm": "n" * 12, "csrf_token": csrf},
    )
    assert wrong.status_code == 400
    assert "the current password is wrong" in wrong.text
    differ = await server.client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "n" * 12, "confirm": "m" * 12, "csrf_token": csrf},
    )
    assert differ.status_code == 400
    short = await server.client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "short", "confirm": "short", "csrf_token": csrf},
    )
    assert short.status_code == 400
    done = await server.client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "n" * 12, "confirm": "n" * 12, "csrf_token": csrf},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/login?next=%2Faccount"
    assert (await server.client.get("/account")).status_code == 303  # the session ended
    await login(server.client, "vera", "n" * 12)


# --- users ------------------------------------------------------------------------------------


async def test_an_admin_manages_users(server: Server) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    page = await server.client.get("/users")
    assert page.status_code == 200
    assert '<tr data-user="root">' in page.text
    r = await server.client.post(
        "/users",
        data={"username": "carol", "role": "viewer", "password": PASSWORD, "csrf_token": csrf},
    )
    assert r.status_code == 303
    assert flash((await server.client.get("/users")).text) == "user carol added (viewer)"
    async with another_client(server) as carol:
        await login(carol, "carol")
        assert (await carol.get("/users")).status_code == 403
        r = await server.client.post(
            "/users/carol/role", data={"role": "admin", "csrf_token": csrf}
        )
        assert r.status_code == 303
        assert (await carol.get("/users")).status_code == 200  # the role applies at once
        r = await server.client.post(
            "/users/carol/disabled", data={"disabled": "true", "csrf_token": csrf}
        )
        assert r.status_code == 303
        assert (await carol.get("/devices")).status_code == 303  # logged out
    assert "disabled" in (await server.client.get("/users")).text
    r = await server.client.post(
        "/users/carol/disabled", data={"disabled": "false", "csrf_token": csrf}
    )
    assert r.status_code == 303
    async with another_client(server) as carol:
        await login(carol, "carol")


async def test_the_last_admin_cannot_be_demoted_from_the_page(server: Server) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    for path, form in (
        ("/users/root/role", {"role": "viewer"}),
        ("/users/root/disabled", {"disabled": "true"}),
    ):
        r = await server.client.post(path, data={**form, "csrf_token": csrf})
        assert r.status_code == 400
        assert "the last admin stays an admin" in r.text
    assert (await server.client.get("/users")).status_code == 200


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"username": "Bad Name!", "role": "viewer", "password": PASSWORD}, 400),
        ({"username": "carol", "role": "owner", "password": PASSWORD}, 400),
        ({"username": "carol", "role": "viewer", "password": "short"}, 400),
        ({"username": "root", "role": "viewer", "password": PASSWORD}, 409),
    ],
)
async def test_bad_user_input(server: Server, form: dict[str, str], status: int) -> None:
    csrf = await logged_in(server.services, server.client, "root")
    r = await server.client.post("/users", data={**form, "csrf_token": csrf})
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    r = await server.client.post("/users/nobody/role", data={"role": "admin", "csrf_token": csrf})
    assert r.status_code == 404
