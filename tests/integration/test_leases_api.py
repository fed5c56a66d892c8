"""``POST|PUT|DELETE /api/leases/{name}`` through a small app: the leases router, the error
envelope and the request-id middleware, over the in-process and the Redis presence.

The credential check is replaced by a fixed principal (the router's own rules about who may use
which lease are what is tested); time is a ``FakeClock``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from beamwarden.protocol import Scope
from beamwarden.server.api import leases as leases_api
from beamwarden.server.api.deps import get_principal
from beamwarden.server.api.errors import install_error_handlers
from beamwarden.server.api.middleware import RequestContext
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.presence.memory import MemoryPresence
from beamwarden.server.records import Principal
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.leases import (
    LEASE_GRANTED,
    LEASE_REFUSED,
    LEASE_RELEASED,
    LeaseService,
    Presence,
)
from tests.contract.test_presence import T0, Events, at, redis_presence

BRIDGE = Principal(7, "node", "bridge-site-x", frozenset({Scope.NODE}), "bridge-site-x")
ADMIN = Principal(1, "user", "ops", frozenset({Scope.ADMIN}))
READER = Principal(2, "user", "grafana", frozenset({Scope.READ}))


class Api:
    def __init__(self, client: httpx.AsyncClient, app: FastAPI, clock: FakeClock, events: Events):
        self.client = client
        self.app = app
        self.clock = clock
        self.events = events

    def as_(self, principal: Principal) -> None:
        self.app.dependency_overrides[get_principal] = lambda: principal

    async def post(self, name: str, **body: Any) -> httpx.Response:
        return await self.client.post(f"/api/leases/{name}", json=body)

    async def put(self, name: str, **body: Any) -> httpx.Response:
        return await self.client.put(f"/api/leases/{name}", json=body)

    async def delete(self, name: str, **body: Any) -> httpx.Response:
        return await self.client.request("DELETE", f"/api/leases/{name}", json=body)


@pytest.fixture(params=["memory", "redis"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    clock, events = FakeClock(T0), Events()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(leases_api.router)
    app.add_middleware(RequestContext, metrics=ServerMetrics())
    transport = httpx.ASGITransport(app=app, client=("192.168.1.50", 50000))

    async def serve(store: Presence) -> AsyncIterator[Api]:
        # the router needs only ``services.leases`` of the app's services
        app.state.services = SimpleNamespace(
            leases=LeaseService(store, clock, events), metrics=ServerMetrics()
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            api = Api(client, app, clock, events)
            api.as_(BRIDGE)
            yield api

    if request.param == "memory":
        async for api in serve(MemoryPresence()):
            yield api
        return
    async with redis_presence() as store:
        async for api in serve(store):
            yield api


def grant(
    name: str,
    holder: str,
    epoch: int,
    acquired: float,
    renewed: float,
    ttl: float = 45.0,
    hostname: str | None = "bridge-1",
    ip: str | None = "10.0.0.5",
) -> dict[str, Any]:
    return {
        "name": name,
        "holder": holder,
        "hostname": hostname,
        "ip": ip,
        "epoch": epoch,
        "acquired_at": at(acquired).isoformat().replace("+00:00", "Z"),
        "renewed_at": at(renewed).isoformat().replace("+00:00", "Z"),
        "expires_at": at(renewed + ttl).isoformat().replace("+00:00", "Z"),
        "ttl_seconds": ttl,
    }


A = {"holder": "bridge-a", "hostname": "bridge-1", "ip": "10.0.0.5"}
B = {"holder": "bridge-b", "hostname": "bridge-1", "ip": "10.0.0.5"}  # same host, other holder


async def test_a_free_lease_is_granted_with_epoch_1(api: Api) -> None:
    r = await api.post("mqtt-bridge:site-x", **A)
    assert r.status_code == 200
    assert r.json() == grant("mqtt-bridge:site-x", "bridge-a", 1, 0, 0)
    assert api.events.kinds() == [LEASE_GRANTED]
    assert api.events.items[0].actor == "node:bridge-site-x"


async def test_a_second_claimant_gets_409_naming_the_holder(api: Api) -> None:
    await api.post("job", **A)
    api.clock.advance(10)
    r = await api.client.post("/api/leases/job", json=B, headers={"X-Request-Id": "claim-2"})
    assert r.status_code == 409
    assert r.headers["x-request-id"] == "claim-2"
    assert r.json() == {
        "error": {
            "code": "lease_held",
            "message": "lease 'job' is held by bridge-a on bridge-1 (10.0.0.5) since "
            f"{T0.isoformat()}, 35.0 s left",
            "details": [
                {
                    "holder": "bridge-a",
                    "hostname": "bridge-1",
                    "ip": "10.0.0.5",
                    "epoch": 1,
                    "acquired_at": "2026-11-22T12:00:00Z",
                    "time_left_seconds": 35.0,
                }
            ],
            "request_id": "claim-2",
        }
    }
    assert api.events.kinds() == [LEASE_GRANTED, LEASE_REFUSED]


async def test_renew_moves_the_deadline_and_keeps_the_ttl_unless_given(api: Api) -> None:
    await api.post("job", **A, ttl_seconds=30)
    api.clock.advance(20)
    r = await api.put("job", holder="bridge-a")
    assert (r.status_code, r.json()) == (200, grant("job", "bridge-a", 1, 0, 20, ttl=30.0))
    api.clock.advance(20)
    r = await api.put("job", holder="bridge-a", ttl_seconds=60)
    assert (r.status_code, r.json()) == (200, grant("job", "bridge-a", 1, 0, 40, ttl=60.0))


async def test_silent_60s_then_a_second_claims_and_the_first_is_refused(api: Api) -> None:
    await api.post("job", **A)
    api.clock.advance(60)
    r = await api.post("job", **B)
    assert (r.status_code, r.json()) == (200, grant("job", "bridge-b", 2, 60, 60))
    renewal = await api.put("job", holder="bridge-a")
    assert renewal.status_code == 409
    assert renewal.json()["error"]["code"] == "lease_held"
    assert renewal.json()["error"]["details"][0]["holder"] == "bridge-b"
    release = await api.delete("job", holder="bridge-a")
    assert release.status_code == 409
    r = await api.delete("job", holder="bridge-b")
    assert (r.status_code, r.json()) == (200, {"name": "job", "released": True, "epoch": 2})
    assert api.events.kinds()[-1] == LEASE_RELEASED


async def test_a_lease_gone_is_409_lease_not_held(api: Api) -> None:
    await api.post("job", **A)
    api.clock.advance(46)
    for r in (await api.put("job", holder="bridge-a"), await api.delete("job", holder="bridge-a")):
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "lease_not_held"
        assert r.json()["error"]["message"] == (
            "bridge-a does not hold lease 'job': it expired or was released"
        )


async def test_the_ip_defaults_to_the_callers_address(api: Api) -> None:
    r = await api.post("job", holder="worker-1")
    assert r.status_code == 200
    assert (r.json()["hostname"], r.json()["ip"]) == (None, "192.168.1.50")
    assert r.json()["ttl_seconds"] == 45.0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/leases/job", {"holder": "a", "ttl_seconds": 0}, "ttl_seconds"),
        ("/api/leases/job", {"holder": "a", "ttl_seconds": 86_401}, "ttl_seconds"),
        ("/api/leases/job", {"holder": ""}, "holder"),
        ("/api/leases/job", {}, "holder"),
        ("/api/leases/-job", {"holder": "a"}, "path:name"),
    ],
)
async def test_invalid_claims_are_400_schema_violations(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    r = await api.client.post(path, json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "schema_violation"
    assert [d["field"] for d in error["details"]] == [field]


async def test_who_may_use_which_lease(api: Api) -> None:
    api.as_(READER)
    r = await api.post("job", **A)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    api.as_(BRIDGE)
    for name in ("node:beamrider-0001", "sweeper:retention", "alert-evaluator", "rollups"):
        r = await api.post(name, **A)  # the server's own: an outside worker would pause a job
        assert r.status_code == 403
        assert "only an admin token may touch it" in r.json()["error"]["message"]
    api.as_(ADMIN)
    r = await api.post("node:beamrider-0001", **A)
    assert r.status_code == 200
    r = await api.delete("node:beamrider-0001", holder="bridge-a")
    assert r.status_code == 200
    assert [e.actor for e in api.events.items] == ["user:ops", "user:ops"]


async def test_the_epoch_grows_with_every_new_grant(api: Api) -> None:
    epochs = []
    for holder in ("a", "b", "c"):
        epochs.append((await api.post("job", holder=holder)).json()["epoch"])
        await api.delete("job", holder=holder)
        api.clock.advance(1)
    assert epochs == [1, 2, 3]
    assert await api.app.state.services.leases.get("job") is None
    assert timedelta(seconds=3) == api.clock.now() - T0
