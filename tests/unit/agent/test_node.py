"""Enrolment, registration and heartbeats against httpx.MockTransport: messages that follow the
protocol's own models, state changes reported one allowed step at a time, a 409 that stops writing."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamwarden.agent.config import AgentConfig, parse_config
from beamwarden.agent.node import NodeLink, kept_token, save_token, state_path
from beamwarden.agent.push import Action
from beamwarden.protocol import InstanceState, Registration, Telemetry
from tests.unit.agent.fakes import FakeClock, inline

S = InstanceState


def config(tmp_path: Path, **top: Any) -> AgentConfig:
    data = {
        "device_id": "n-1",
        "api_url": "http://bw",
        "device_token": "bwn_token123",
        "state_dir": str(tmp_path / "state"),
        "tags": {"site": "lab"},
        **top,
    }
    return parse_config({k: v for k, v in data.items() if v is not None})


@pytest.fixture
async def link(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., tuple[NodeLink, list[httpx.Request]]]]:
    clients: list[httpx.AsyncClient] = []

    def make(
        answer: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(202),
        **top: Any,
    ) -> tuple[NodeLink, list[httpx.Request]]:
        seen: list[httpx.Request] = []

        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return answer(request)

        client = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://bw")
        clients.append(client)
        node = NodeLink(
            config(tmp_path, **top), client, FakeClock(), lambda: {"queue_depth": 3}, offload=inline
        )
        return node, seen

    yield make
    for client in clients:
        await client.aclose()


#: the server's state machine (fleet.instances.NEXT), restated: the agent may not import fleet
EDGES = {
    S.IDLE: {S.STARTING},
    S.STARTING: {S.WARMING, S.STOPPING, S.IDLE},
    S.WARMING: {S.ACTIVE, S.STOPPING, S.IDLE},
    S.ACTIVE: {S.STOPPING},
    S.STOPPING: {S.STOPPED},
    S.STOPPED: {S.IDLE},
}


def test_state_paths_take_only_allowed_steps() -> None:
    assert state_path(None, S.ACTIVE) == [S.IDLE, S.STARTING, S.WARMING, S.ACTIVE]
    assert state_path(None, S.STOPPED) == [S.STOPPED]  # a first report may be any state
    assert state_path(S.ACTIVE, S.ACTIVE) == [S.ACTIVE]
    assert state_path(S.STARTING, S.ACTIVE) == [S.WARMING, S.ACTIVE]
    assert state_path(S.WARMING, S.STOPPING) == [S.STOPPING]
    assert state_path(S.WARMING, S.STOPPED) == [S.STOPPING, S.STOPPED]
    assert state_path(S.ACTIVE, S.STOPPED) == [S.STOPPING, S.STOPPED]
    assert state_path(S.STOPPING, S.STOPPED) == [S.STOPPED]
    assert state_path(S.IDLE, S.STOPPED) == []
    assert state_path(S.ACTIVE, S.WARMING) == [S.STOPPING, S.STOPPED, S.IDLE, S.STARTING, S.WARMING]


@pytest.mark.parametrize("reported", [None, *S])
@pytest.mark.parametrize("desired", list(S))
def test_every_path_ends_where_asked_through_allowed_edges(reported: S | None, desired: S) -> None:
    path = state_path(reported, desired)
    steps = list(zip([reported, *path], path, strict=False))
    for before, after in steps:
        assert before is None or before == after or after in EDGES[before], (before, after)
    if path:
        assert path[-1] is desired
    else:
        assert reported is S.IDLE
        assert desired in (S.STOPPING, S.STOPPED)  # never started: nothing to stop


async def test_heartbeats_follow_the_protocol_and_report_every_state_on_the_way(
    link: Callable[..., Any],
) -> None:
    node, seen = link()
    node.reported = S.STARTING
    node.state = S.ACTIVE
    verdict = await node.heartbeat()
    assert verdict.action is Action.STORED
    bodies = [Telemetry.model_validate(json.loads(r.content)) for r in seen]
    assert [b.state for b in bodies] == [S.WARMING, S.ACTIVE]
    first = bodies[0]
    assert (first.node_id, first.role, first.instance_id, first.interval_seconds) == (
        "n-1",
        "pi-log",
        node.instance_id,
        30.0,
    )
    assert (first.metrics, first.tags, first.protocol_version) == (
        {"queue_depth": 3},
        {"site": "lab"},
        "1.0",
    )
    assert seen[0].headers["authorization"] == "Bearer bwn_token123"
    assert seen[0].url.path == "/api/telemetry"
    assert node.reported is S.ACTIVE


async def test_a_409_stops_writing_until_a_heartbeat_is_accepted_again(
    link: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    answers = [
        httpx.Response(
            409,
            json={
                "error": {
                    "code": "lease_held",
                    "message": "held by instance 9f2c",
                    "details": [],
                    "request_id": "r",
                }
            },
        ),
        httpx.Response(
            409,
            json={
                "error": {
                    "code": "lease_held",
                    "message": "held by instance 9f2c",
                    "details": [],
                    "request_id": "r",
                }
            },
        ),
        httpx.Response(202),
    ]
    node, _ = link(lambda r: answers.pop(0) if answers else httpx.Response(202))
    holds: list[str | None] = []
    node.on_conflict = holds.append
    await node.heartbeat()
    await node.heartbeat()
    assert node.conflict is not None
    assert "held by instance 9f2c" in node.conflict
    assert len([r for r in caplog.records if "stops writing" in r.getMessage()]) == 1
    await node.heartbeat()
    assert node.conflict is None
    assert holds == [
        "HTTP 409 lease_held: held by instance 9f2c (request r)",
        "HTTP 409 lease_held: held by instance 9f2c (request r)",
        None,
    ]


async def test_registration_reports_what_the_node_is(link: Callable[..., Any]) -> None:
    node, seen = link(lambda r: httpx.Response(200, json={}))
    assert (await node.register()).action is Action.STORED
    body = Registration.model_validate(json.loads(seen[0].content))
    assert (body.node_id, body.role, body.software_version, body.tags) == (
        "n-1",
        "pi-log",
        node.version,
        {"site": "lab"},
    )
    assert node.registered


async def test_enrolment_keeps_the_token_it_receives(
    link: Callable[..., Any], tmp_path: Path
) -> None:
    node, seen = link(
        lambda r: httpx.Response(201, json={"node_id": "n-1", "token": "bwn_fresh"}),
        device_token=None,
        enrolment_key="bwe_enrolment",
    )
    assert node.token is None
    assert (await node.enrol()).action is Action.STORED
    assert seen[0].headers["authorization"] == "Bearer bwe_enrolment"
    assert (node.token, node.have_token.is_set()) == ("bwn_fresh", True)
    token_file = tmp_path / "state" / "node-token"
    assert token_file.read_text() == "bwn_fresh\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    again, _ = link(device_token=None, enrolment_key="bwe_enrolment")
    assert again.token == "bwn_fresh"  # the next start does not enrol again


async def test_an_enrolment_refused_as_existing_says_what_to_do(
    link: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    node, _ = link(
        lambda r: httpx.Response(
            409,
            json={
                "error": {
                    "code": "already_exists",
                    "message": "exists",
                    "details": [],
                    "request_id": "r",
                }
            },
        ),
        device_token=None,
        enrolment_key="bwe_enrolment",
    )
    assert (await node.enrol()).action is Action.CONFLICT
    assert node.token is None
    assert "beamwarden nodes enrol n-1" in caplog.text


async def test_an_enrolment_answer_without_a_token_is_not_a_success(
    link: Callable[..., Any],
) -> None:
    node, _ = link(
        lambda r: httpx.Response(200, json={}), device_token=None, enrolment_key="bwe_enrolment"
    )
    assert (await node.enrol()).action is Action.REFUSED


def test_save_and_read_back_a_token(tmp_path: Path) -> None:
    assert kept_token(tmp_path) is None
    save_token(tmp_path / "new", "bwn_x")
    assert kept_token(tmp_path / "new") == "bwn_x"


def refused(before: str, after: str) -> httpx.Response:
    return httpx.Response(
        409,
        json={
            "error": {
                "code": "invalid_transition",
                "message": f"instance state {before} → {after} is not allowed",
                "details": [],
                "request_id": "r",
            }
        },
    )


async def test_a_refused_transition_walks_from_the_state_the_server_kept(
    link: Callable[..., Any],
) -> None:
    answers = [refused("starting", "active")]
    node, seen = link(lambda r: answers.pop(0) if answers else httpx.Response(202))
    holds: list[str | None] = []
    node.on_conflict = holds.append
    node.reported, node.state = S.WARMING, S.ACTIVE  # the server lost our "warming"
    verdict = await node.heartbeat()
    assert verdict.action is Action.STORED
    assert [json.loads(r.content)["state"] for r in seen] == ["active", "warming", "active"]
    assert (node.reported, node.conflict, holds) == (S.ACTIVE, None, [])


async def test_a_state_change_is_reported_at_once_not_at_the_next_interval(
    link: Callable[..., Any],
) -> None:
    node, seen = link(lambda r: httpx.Response(202))
    clock = node.clock
    ready = False
    node.ready = lambda: ready
    stop = asyncio.Event()
    node.registered = True
    task = asyncio.create_task(node.run(stop))
    await clock.advance(0)
    states = [json.loads(r.content)["state"] for r in seen]
    assert states == ["idle", "starting", "warming"]
    ready = True
    node.poke()  # the first push was stored
    await clock.advance(0)  # no time passes: the change is reported now
    assert [json.loads(r.content)["state"] for r in seen][3:] == ["active"]
    await clock.advance(30)
    assert [json.loads(r.content)["state"] for r in seen][4:] == ["active"]  # the interval
    stop.set()
    await clock.advance(0)
    await task
    await node.farewell()
    assert [json.loads(r.content)["state"] for r in seen][5:] == ["stopping", "stopped"]
