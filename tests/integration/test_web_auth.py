"""The dashboard's login, sessions, CSRF, rate limiting and roles, through the ASGI app."""

from __future__ import annotations

import httpx
import pytest

from beamwarden.server.user_records import Role
from tests.conftest import Server
from tests.fixtures.web import PASSWORD, add_user, csrf_in, logged_in, login


async def test_pages_send_a_stranger_to_the_login_form(server: Server) -> None:
    answer = await server.client.get("/?status=online")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F%3Fstatus%3Donline"
    panel = await server.client.get("/ui/fleet")
    assert panel.status_code == 401
    assert panel.json()["error"]["code"] == "login_required"


async def test_login_sets_a_safe_cookie_and_logout_ends_the_session(server: Server) -> None:
    await add_user(server.services, "alice")
    form = await server.client.get("/login")
    assert "bw_login" in form.cookies
    answer = await server.client.post(
        "/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_in(form.text),
            "next": "/devices",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/devices"
    cookie = next(
        h for h in answer.headers.get_list("set-cookie") if h.startswith("bw_session=")
    ).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http (a test client); https sets it
    page = await server.client.get("/")
    assert page.status_code == 200
    assert "alice" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    csrf = csrf_in(page.text)
    out = await server.client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert (await server.client.get("/")).status_code == 303
    assert (await server.client.get("/ui/fleet")).status_code == 401


async def test_https_sets_the_secure_flag(server: Server) -> None:
    await add_user(server.services, "alice")
    transport = httpx.ASGITransport(app=server.app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="https://dash.example") as client:
        form = await client.get("/login")
        answer = await client.post(
            "/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_in(form.text)},
        )
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("bw_session="))
    assert "secure" in cookie.lower()


async def test_wrong_password_and_unknown_user_look_the_same(server: Server) -> None:
    await add_user(server.services, "alice")
    answers = []
    for name in ("alice", "mallory"):
        form = await server.client.get("/login")
        answers.append(
            await server.client.post(
                "/login",
                data={
                    "username": name,
                    "password": "wrong-password",
                    "csrf_token": csrf_in(form.text),
                },
            )
        )
    assert [a.status_code for a in answers] == [401, 401]
    assert all("wrong user name or password" in a.text for a in answers)
    assert "bw_session" not in server.client.cookies


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example", "/\\evil"])
async def test_login_never_redirects_off_site(server: Server, next_url: str) -> None:
    await add_user(server.services, "alice")
    form = await server.client.get("/login")
    answer = await server.client.post(
        "/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_in(form.text),
            "next": next_url,
        },
    )
    assert answer.headers["location"] == "/"


async def test_login_without_its_csrf_token_is_refused(server: Server) -> None:
    await add_user(server.services, "alice")
    await server.client.get("/login")
    answer = await server.client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert answer.status_code == 403
    forged = await server.client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "x" * 32}
    )
    assert forged.status_code == 403
    assert "bw_session" not in server.client.cookies


async def test_posts_without_the_sessions_csrf_token_are_refused(server: Server) -> None:
    csrf = await logged_in(server.services, server.client, "alice")
    assert (await server.client.post("/logout")).status_code == 403
    assert (await server.client.post("/logout", data={"csrf_token": "nope"})).status_code == 403
    other = await server.client.post("/logout", headers={"X-CSRF-Token": csrf[::-1]})
    assert other.status_code == 403
    assert (await server.client.get("/")).status_code == 200  # still logged in
    ok = await server.client.post("/logout", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 303


async def test_failed_logins_are_rate_limited(server: Server) -> None:
    await add_user(server.services, "alice")
    limit = server.app.state.settings.login_max_failures
    for _ in range(limit):
        form = await server.client.get("/login")
        bad = await server.client.post(
            "/login",
            data={"username": "alice", "password": "nope-nope", "csrf_token": csrf_in(form.text)},
        )
        assert bad.status_code == 401
    form = await server.client.get("/login")
    refused = await server.client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_in(form.text)}
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    server.clock.advance(server.app.state.settings.login_window_s + 1)
    await login(server.client, "alice")  # the window slid: the right password works again


async def test_sessions_expire_when_idle(server: Server) -> None:
    await logged_in(server.services, server.client, "alice")
    idle = server.app.state.settings.session_idle_s
    server.clock.advance(idle - 120)
    assert (await server.client.get("/")).status_code == 200  # use slides the expiry
    server.clock.advance(idle - 120)
    assert (await server.client.get("/")).status_code == 200
    server.clock.advance(idle + 1)
    assert (await server.client.get("/")).status_code == 303


async def test_a_disabled_user_is_logged_out(server: Server) -> None:
    await add_user(server.services, "root")
    await logged_in(server.services, server.client, "bob", Role.VIEWER)
    assert server.services.users is not None
    await server.services.users.set_disabled("bob", True, actor="test")
    assert (await server.client.get("/")).status_code == 303


async def test_the_last_admin_stays_an_admin(server: Server) -> None:
    from beamwarden.server.errors import InvalidRequest

    await add_user(server.services, "root")
    assert server.services.users is not None
    with pytest.raises(InvalidRequest):
        await server.services.users.set_role("root", Role.VIEWER)
    with pytest.raises(InvalidRequest):
        await server.services.users.set_disabled("root", True)
