"""``POST /api/telemetry`` without the framework (``api.telemetry.handle_telemetry``) answers every
request exactly as the routed endpoint does: the same request sent once plainly (fast path) and
once with ``Content-Encoding: identity`` (which only the routed endpoint takes) gets the same
status, headers that matter and body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from beamwarden.protocol import Scope
from beamwarden.server.api.telemetry import takes_fast_path
from tests.conftest import START, Server, auth

BEAT = {
    "node_id": "node-1",
    "role": "pi-log",
    "timestamp": START.isoformat(),
    "uptime_seconds": 12.5,
    "software_version": "2.0.1",
    "ip_address": "192.168.1.20",
    "interval_seconds": 10,
    "instance_id": "i-1",
    "state": "active",
}


def body_of(r: Any) -> Any:
    try:
        body = r.json()
    except ValueError:
        return r.text
    if isinstance(body, dict) and "error" in body:
        body["error"].pop("request_id", None)
    return body


async def both(server: Server, content: bytes, headers: dict[str, str]) -> tuple[Any, Any]:
    plain = {"Content-Type": "application/json", **headers}
    fast = await server.client.post("/api/telemetry", content=content, headers=plain)
    routed = await server.client.post(
        "/api/telemetry", content=content, headers={**plain, "Content-Encoding": "identity"}
    )
    return fast, routed


def same(fast: Any, routed: Any) -> None:
    assert fast.status_code == routed.status_code, (fast.text, routed.text)
    assert body_of(fast) == body_of(routed)
    for name in ("content-type", "warning", "www-authenticate", "retry-after"):
        assert fast.headers.get(name) == routed.headers.get(name), name
    assert fast.headers["x-request-id"]


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("valid", {}),
        ("old protocol version", {"protocol_version": "0.9"}),
        ("schema", {"uptime_seconds": -1, "ip_address": 7}),
        ("unknown field", {"colour": "red"}),
        ("another node", {"node_id": "node-2"}),
        ("not in the inventory", {"node_id": "ghost"}),
        ("refused transition", {"state": "warming", "instance_id": "i-2"}),
    ],
)
async def test_the_fast_path_answers_as_the_routed_endpoint(
    server: Server, case: str, change: dict[str, Any]
) -> None:
    token = await server.node()
    await server.node("node-2")
    if case == "refused transition":  # i-1 holds the node: i-2 is refused naming it
        r = await server.client.post("/api/telemetry", json=BEAT, headers=auth(token))
        assert r.status_code == 202
    content = json.dumps({**BEAT, **change}).encode()
    fast, routed = await both(server, content, auth(token))
    same(fast, routed)
    if case == "valid":
        assert fast.status_code == 202
        assert fast.json() == {"status": "accepted"}


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[1, 2]", b'"x"', b"null", b'{"node_id": NaN}', b"\xff\xfe", b"{}"],
)
async def test_bad_bodies_are_answered_alike(server: Server, content: bytes) -> None:
    token = await server.node()
    fast, routed = await both(server, content, auth(token))
    same(fast, routed)
    assert fast.status_code == 400


async def test_credentials_are_checked_alike(server: Server) -> None:
    await server.node()
    reader = await server.user(Scope.READ)
    content = json.dumps(BEAT).encode()
    for headers in ({}, {"Authorization": "Bearer nope"}, auth(reader)):
        fast, routed = await both(server, content, headers)
        same(fast, routed)
        assert fast.status_code in (401, 403)


async def test_a_too_large_body_is_413(server: Server) -> None:
    token = await server.node()
    big = json.dumps({**BEAT, "tags": {"x": "y" * 9_000_000}}).encode()
    r = await server.client.post(
        "/api/telemetry", content=big, headers={"Content-Type": "application/json", **auth(token)}
    )
    assert r.status_code == 413


def test_only_plain_json_posts_to_the_telemetry_path_take_it() -> None:
    def scope(method: str = "POST", path: str = "/api/telemetry", **headers: str) -> Any:
        raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return {"method": method, "path": path, "headers": raw}

    assert takes_fast_path(scope(content_type="application/json"))
    assert takes_fast_path(scope(content_type="Application/JSON; charset=utf-8"))
    assert not takes_fast_path(scope())
    assert not takes_fast_path(scope(content_type="text/plain"))
    assert not takes_fast_path(scope(content_type="application/json", content_encoding="gzip"))
    assert not takes_fast_path(scope("GET", content_type="application/json"))
    assert not takes_fast_path(scope(path="/api/telemetry/", content_type="application/json"))
