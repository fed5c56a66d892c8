"""The server's own logs and metrics under ``/obs/`` (beamwarden.obs): loopback reads them, anyone
else needs an admin token, and ``obs_store = "off"`` turns them off."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from beamwarden.protocol import Scope
from tests.conftest import Server, auth


@pytest.fixture
async def remote(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A client on another host (not in ``metrics_allow_from``)."""
    transport = httpx.ASGITransport(app=server.app, client=("10.0.0.5", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_loopback_reads_the_servers_own_logs(server: Server) -> None:
    server.app.state.obs.flush()
    r = await server.client.get("/obs/logs.json")
    assert r.status_code == 200, r.text
    messages = [item["message"] for item in r.json()["items"]]
    assert any("serving on" in m for m in messages)
    assert (await server.client.get("/obs/health")).status_code == 200
    lines = (await server.client.get("/obs/logs?limit=1")).text.splitlines()
    assert len(lines) == 1
    json.loads(lines[0])


async def test_others_need_an_admin_token(server: Server, remote: httpx.AsyncClient) -> None:
    assert (await remote.get("/obs/logs.json")).status_code == 401
    reader = await server.user(Scope.READ)
    r = await remote.get("/obs/logs.json", headers=auth(reader))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    admin = await server.user(Scope.ADMIN)
    assert (await remote.get("/obs/logs.json", headers=auth(admin))).status_code == 200


async def test_bad_parameters_are_400(server: Server) -> None:
    r = await server.client.get("/obs/logs?level=loud")
    assert r.status_code == 400


@pytest.mark.parametrize("settings_overrides", [{"obs_store": "off"}])
async def test_obs_off_answers_404(server: Server, settings_overrides: dict[str, Any]) -> None:
    r = await server.client.get("/obs/logs.json")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
