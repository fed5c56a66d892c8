"""Hypothesis over the dashboard's forms (device edit, silence, activity filters, users, tokens):
whatever a browser (or anyone) posts, the answer is a redirect or a clear 4xx page, never a 500.

The app runs once per test on SQLite in an event loop of its own (``asyncio.Runner``), so every
generated example reuses it: hypothesis drives synchronous tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beamwarden.server.app import create_app
from beamwarden.server.device_records import SeenDevice
from beamwarden.server.records import to_us
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.container import Services
from beamwarden.server.settings import ServerSettings
from tests.conftest import START
from tests.fixtures.web import logged_in

KITCHEN = "ble:A4C138123456"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: what a form field may carry: any text a browser can encode, or the field left out
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
FIELD = st.one_of(st.none(), TEXT, st.sampled_from(["", " ", "x" * 129, "a\x00b", "é" * 200]))
DURATIONS = st.one_of(
    TEXT,
    st.sampled_from(["1h", "0s", "-1h", "1e400s", "99999999999999999999d", "nan", "inf", "1h30m"]),
    st.integers().map(str),
    st.floats().map(str),
)


@dataclass
class Harness:
    runner: asyncio.Runner
    client: httpx.AsyncClient
    csrf: str

    def post(self, path: str, form: dict[str, Any]) -> httpx.Response:
        data = {k: v for k, v in form.items() if v is not None}
        return self.runner.run(self.client.post(path, data={**data, "csrf_token": self.csrf}))

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        query = {k: v for k, v in params.items() if v is not None}
        return self.runner.run(self.client.get(path, params=query))


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    config = ServerSettings(
        database_url=f"sqlite:///{tmp_path}/fuzz.db",
        log_format="text",
        heartbeat_flush_s=0.05,
        gc_freeze=False,
        alert_interval_s=3600,
    )
    app = create_app(config, clock=FakeClock(START))
    runner = asyncio.Runner()
    lifespan = app.router.lifespan_context(app)
    runner.run(lifespan.__aenter__())
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    services: Services = app.state.services

    async def setup() -> str:
        assert services.devices is not None
        await services.devices.observe([SeenDevice(KITCHEN, to_us(START), "omg")])
        await services.devices.flush_seen()
        return await logged_in(services, client, "root")

    try:
        yield Harness(runner, client, runner.run(setup()))
    finally:
        runner.run(client.aclose())
        runner.run(lifespan.__aexit__(None, None, None))
        runner.close()


def refused_clearly(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(("text/html", "application/json"))


@FUZZ
@given(
    key=st.one_of(st.just(KITCHEN), TEXT.filter(bool)),
    name=FIELD,
    room=FIELD,
    site=FIELD,
    claimed=st.one_of(st.none(), st.sampled_from(["true", "false", ""]), TEXT),
    back=st.one_of(st.none(), st.sampled_from(["//evil.example", "https://x", "/devices"]), TEXT),
)
def test_the_device_form_never_fails(
    harness: Harness,
    key: str,
    name: str | None,
    room: str | None,
    site: str | None,
    claimed: str | None,
    back: str | None,
) -> None:
    form = {"name": name, "room": room, "site": site, "claimed": claimed, "back": back}
    r = harness.post(f"/devices/{quote(key, safe=':')}", form)
    refused_clearly(r)
    if r.status_code == 303:
        assert r.headers["location"].startswith("/")
        assert not r.headers["location"].startswith("//")


@FUZZ
@given(
    duration=DURATIONS,
    rules=FIELD,
    node=FIELD,
    role=FIELD,
    sensor_id=FIELD,
    name=FIELD,
    comment=FIELD,
)
def test_the_silence_form_never_fails(
    harness: Harness,
    duration: str,
    rules: str | None,
    node: str | None,
    role: str | None,
    sensor_id: str | None,
    name: str | None,
    comment: str | None,
) -> None:
    form = {
        "duration": duration,
        "rules": rules,
        "node": node,
        "role": role,
        "sensor_id": sensor_id,
        "name": name,
        "comment": comment,
    }
    refused_clearly(harness.post("/alerts/silences", form))


@FUZZ
@given(
    document=st.one_of(
        TEXT,
        st.sampled_from(
            [
                '{"rules": 5}',
                "rules = 5",
                "{}",
                "[x]\n",
                "x = 1979-05-27T07:32:00Z",
                "d = 2026-01-01",
            ]
        ),
    )
)
def test_the_rules_form_never_fails(harness: Harness, document: str) -> None:
    r = harness.post("/alerts/rules", {"document": document})
    refused_clearly(r)


@FUZZ
@given(
    node=FIELD,
    kind=FIELD,
    range=st.one_of(FIELD, st.sampled_from(["1h", "24h", "7d", "30d"])),
    since=st.one_of(FIELD, st.sampled_from(["2026-11-22T12:00", "9999-12-31T23:59+14:00"])),
    until=st.one_of(FIELD, st.sampled_from(["0001-01-01T00:00-14:00", "2026-11-22"])),
    cursor=FIELD,
)
def test_the_activity_filters_never_fail(
    harness: Harness,
    node: str | None,
    kind: str | None,
    range: str | None,
    since: str | None,
    until: str | None,
    cursor: str | None,
) -> None:
    params = {"node": node, "kind": kind, "range": range, "since": since, "until": until}
    refused_clearly(harness.get("/activity", {**params, "cursor": cursor}))
    refused_clearly(harness.get("/ui/activity", params))


@FUZZ
@given(username=FIELD, role=FIELD, password=FIELD, scope=FIELD, token_name=FIELD)
def test_the_user_and_token_forms_never_fail(
    harness: Harness,
    username: str | None,
    role: str | None,
    password: str | None,
    scope: str | None,
    token_name: str | None,
) -> None:
    refused_clearly(
        harness.post("/users", {"username": username, "role": role, "password": password})
    )
    who = quote(username or "x", safe="")
    refused_clearly(harness.post(f"/users/{who}/role", {"role": role}))
    refused_clearly(harness.post(f"/users/{who}/disabled", {"disabled": role}))
    refused_clearly(harness.post("/account/tokens", {"name": token_name, "scope": scope}))
    refused_clearly(harness.post(f"/account/tokens/{quote(scope or '1', safe='')}/revoke", {}))
