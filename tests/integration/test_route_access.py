"""Every route of the app requires the credential PROTOCOL.md names for it — proven by walking the
route table, so a route added without being classified here fails this test.

- ``public``: the process' liveness, the API's own description, the login form, static files.
- ``slug``: a check-in URL, whose secret slug is the credential.
- ``metrics``: loopback, or a token with the ``metrics`` scope.
- ``node``: a node token (or an enrolment key, for registration) — a user token is refused.
- ``lease``: a node token or an admin token.
- ``read``: any user token (or a node token, for its own data).
- ``admin``: an admin token.
- Dashboard routes: a page sends a stranger to the login form, a ``/ui/`` panel answers 401; a
  viewer sees every page but ``ADMIN_PAGES``; every POST needs the session's CSRF token, and every POST but those in
  ``ANY_USER_POSTS`` needs an admin.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from beamwarden.protocol import Scope
from beamwarden.server.api.ingest_path import PATHS as INGEST_PATHS
from beamwarden.server.user_records import Role
from beamwarden.server.web.rendering import WebRoute
from tests.conftest import Server, auth
from tests.fixtures.web import add_user, login

API: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("GET", "/api/health/live"): "public",
    ("GET", "/api/health/ready"): "public",
    ("GET", "/api/health"): "read",
    ("GET", "/metrics"): "metrics",
    ("POST", "/api/nodes/register"): "node",
    ("POST", "/api/telemetry"): "node",
    ("POST", "/api/readings"): "node",
    ("POST", "/api/geiger/push"): "node",
    ("GET", "/api/readings"): "read",
    ("GET", "/api/series"): "read",
    ("GET", "/api/nodes"): "read",
    ("GET", "/api/nodes/{node_id}"): "read",
    ("GET", "/api/events"): "read",
    ("POST", "/api/leases/{name}"): "lease",
    ("PUT", "/api/leases/{name}"): "lease",
    ("DELETE", "/api/leases/{name}"): "lease",
    ("GET", "/api/devices"): "read",
    ("GET", "/api/devices/{device_id}"): "read",
    ("PATCH", "/api/devices/{device_id}"): "admin",
    ("GET", "/api/alerts"): "read",
    ("GET", "/api/alert-rules"): "read",
    ("PUT", "/api/alert-rules"): "admin",
    ("GET", "/api/silences"): "read",
    ("POST", "/api/silences"): "admin",
    ("DELETE", "/api/silences/{silence_id}"): "admin",
    ("GET", "/api/notifications"): "admin",
    ("POST", "/api/notifications/test"): "admin",
    ("GET", "/api/geiger/summary"): "read",
    ("POST", "/api/checkins/{slug}"): "slug",
    ("POST", "/api/checkins/{slug}/fail"): "slug",
    ("POST", "/api/checkins"): "admin",
    ("GET", "/api/checkins"): "read",
    ("DELETE", "/api/checkins/{name}"): "admin",
    ("GET", "/api/retention"): "read",
    ("PUT", "/api/retention"): "admin",
    ("GET", "/login"): "public",
    ("POST", "/login"): "login-form",
}
#: mounts: /obs is loopback or admin (tests/integration/test_obs_mount.py), /static is public
MOUNTS = {"/obs": "loopback-or-admin", "/static": "public"}
#: dashboard POSTs any logged-in person may make (about themselves)
ANY_USER_POSTS = re.compile(r"^/(logout|account(/.*)?)$")
#: dashboard pages only an admin sees
ADMIN_PAGES = {"/users"}
#: a value for each path parameter
PARAMS = {
    "node_id": "node-1",
    "name": "custom-job",
    "device_id": "ble:A4C138000001",
    "silence_id": "1",
    "slug": "bwc_not-a-real-slug",
}
#: bodies the schema accepts, where authorisation is checked after the body is validated
BODIES = {
    ("POST", "/api/nodes/register"): (
        b'{"node_id": "node-9", "role": "pi-log", "hostname": "h", "ip_address": "10.0.0.9",'
        b' "software_version": "1", "tags": {}}'
    ),
    ("POST", "/api/checkins"): b'{"name": "backup", "every": "1d"}',
    ("POST", "/api/leases/{name}"): b'{"holder": "worker-1", "ttl_seconds": 45}',
    ("PUT", "/api/leases/{name}"): b'{"holder": "worker-1", "ttl_seconds": 45}',
    ("DELETE", "/api/leases/{name}"): b'{"holder": "worker-1"}',
    ("POST", "/api/telemetry"): (
        b'{"node_id": "node-1", "role": "pi-log", "timestamp": "2026-11-22T12:00:00Z",'
        b' "uptime_seconds": 1, "software_version": "1", "ip_address": "10.0.0.1",'
        b' "metrics": {}, "tags": {}}'
    ),
}
#: a client address that is not loopback (an ASGI scope value: nothing is sent anywhere)
FAR = ("203.0.113.9", 40000)
REFUSED = {401, 403}


def _routes(server: Server) -> list[tuple[str, str, bool]]:
    """(method, path template, is a dashboard route) for every route, ingest paths included."""
    found = [("POST", path, False) for path in INGEST_PATHS]
    for ctx in iter_route_contexts(server.app.routes):
        route = ctx.original_route
        if isinstance(route, Mount):
            continue
        for method in sorted((ctx.methods or set()) - {"HEAD"}):
            found.append((method, ctx.path, isinstance(route, WebRoute)))
    return found


def _url(template: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMS.get(m.group(1), "x"), template)


async def _call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = BODIES.get((method, path), None if method in ("GET", "DELETE") else b"{}")
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    return await client.request(method, _url(path), content=body, headers=hdrs)


@pytest.fixture
async def far_client(server: Server) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=server.app, client=FAR)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_every_route_is_classified(server: Server) -> None:
    routes = _routes(server)
    api = {(m, p) for m, p, web in routes if not web}
    assert api - API.keys() == set(), "classify these routes in API"
    web = {(m, p) for m, p, is_web in routes if is_web} - API.keys()
    assert all(m in ("GET", "POST") for m, _ in web), "dashboard routes are GET or POST"
    mounts = {r.path for r in server.app.routes if isinstance(r, Mount)}
    assert mounts == MOUNTS.keys()


async def test_no_route_answers_a_stranger(server: Server, far_client: httpx.AsyncClient) -> None:
    async with far_client:
        for method, path, web in _routes(server):
            kind = API.get((method, path), "dashboard")
            answer = await _call(far_client, method, path)
            where = f"{method} {path}: {answer.status_code} {answer.text[:200]}"
            if kind == "public":
                assert answer.status_code not in REFUSED, where
            elif kind == "login-form":  # no credential, but its own CSRF token
                assert answer.status_code == 403, where
            elif kind == "slug":
                assert answer.status_code == 404, where  # an unknown slug is nobody's
            elif web and not path.startswith("/ui/") and method == "GET":
                assert answer.status_code == 303, where
                assert answer.headers["location"].startswith("/login"), where
            elif web and method == "POST":
                assert answer.status_code in {303, 401, 403}, where
                assert answer.headers.get("location", "/login").startswith("/login"), where
            else:
                assert answer.status_code in REFUSED, where


async def test_a_read_token_reads_and_changes_nothing(
    server: Server, far_client: httpx.AsyncClient
) -> None:
    read = auth(await server.user(Scope.READ))
    async with far_client:
        for method, path, web in _routes(server):
            kind = API.get((method, path))
            if web or kind in ("public", "login-form", "slug", None):
                continue
            answer = await _call(far_client, method, path, read)
            where = f"{method} {path}: {answer.status_code} {answer.text[:200]}"
            if kind == "read":
                assert answer.status_code not in REFUSED, where
            else:  # node, lease, admin, metrics
                assert answer.status_code == 403, where


async def test_an_admin_token_may_do_admin_things_but_not_be_a_node(
    server: Server, far_client: httpx.AsyncClient
) -> None:
    admin = auth(await server.user(Scope.ADMIN))
    async with far_client:
        for method, path, web in _routes(server):
            kind = API.get((method, path))
            if web or kind in ("public", "login-form", "slug", None):
                continue
            answer = await _call(far_client, method, path, admin)
            where = f"{method} {path}: {answer.status_code} {answer.text[:200]}"
            if kind == "node":
                assert answer.status_code == 403, where
            else:
                assert answer.status_code not in REFUSED, where


async def test_a_node_token_writes_its_own_and_administers_nothing(
    server: Server, far_client: httpx.AsyncClient
) -> None:
    node = auth(await server.node("node-1"))
    async with far_client:
        for method, path, web in _routes(server):
            kind = API.get((method, path))
            if web or kind not in ("admin", "metrics"):
                continue
            answer = await _call(far_client, method, path, node)
            assert answer.status_code == 403, f"{method} {path}: {answer.status_code}"


async def test_a_viewer_sees_every_page_and_changes_nothing(server: Server) -> None:
    await add_user(server.services, "root", Role.ADMIN)
    await add_user(server.services, "vera", Role.VIEWER)
    csrf = await login(server.client, "vera")
    for method, path, web in _routes(server):
        if not web or (method, path) in API:
            continue
        if method == "GET":
            answer = await server.client.get(_url(path))
            if path in ADMIN_PAGES:
                assert answer.status_code == 403, f"GET {path}: {answer.status_code}"
            else:
                assert answer.status_code not in {*REFUSED, 303}, (
                    f"GET {path}: {answer.status_code}"
                )
        elif not ANY_USER_POSTS.match(_url(path)):
            answer = await server.client.post(_url(path), data={"csrf_token": csrf})
            assert answer.status_code == 403, f"POST {path}: {answer.status_code}"


async def test_every_dashboard_post_needs_the_csrf_token(server: Server) -> None:
    await add_user(server.services, "root", Role.ADMIN)
    await login(server.client, "root")
    for method, path, web in _routes(server):
        if not web or method != "POST" or (method, path) in API:
            continue
        answer = await server.client.post(_url(path), data={"anything": "1"})
        assert answer.status_code == 403, f"POST {path}: {answer.status_code}"
        assert "csrf" in answer.text.lower(), f"POST {path}"
    assert (await server.client.get("/")).status_code == 200  # still logged in: nothing ran
