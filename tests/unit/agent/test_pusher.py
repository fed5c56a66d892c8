"""The push client against httpx.MockTransport: every answer of PROTOCOL.md's sender table, the
413 split, backoff with injected jitter, Retry-After, and live readings first after an outage."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamwarden.agent.config import PushSettings
from beamwarden.agent.push import Action, Pusher, ReadingSender
from beamwarden.agent.queue import ReadingQueue
from tests.unit.agent.fakes import FakeClock, inline

Answer = httpx.Response | Exception | Callable[[list[dict[str, Any]]], httpx.Response]


@dataclass
class ScriptedServer:
    """Answers requests from a script (then 200); records what each request carried."""

    script: list[Answer] = field(default_factory=list)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        raw = request.content
        if request.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        batch = json.loads(raw)
        self.requests.append(request)
        self.batches.append(batch)
        answer = (
            self.script.pop(0)
            if self.script
            else httpx.Response(200, json={"accepted": len(batch)})
        )
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(batch)
        return answer

    def numbers(self, index: int = -1) -> list[int]:
        return [item["payload"]["n"] for item in self.batches[index]]


@dataclass
class Rig:
    pusher: Pusher
    queue: ReadingQueue
    server: ScriptedServer
    clock: FakeClock
    client: httpx.AsyncClient

    def put(self, *numbers: int) -> None:
        self.queue.put_many([reading(n) for n in numbers], self.clock.now().timestamp())
        self.pusher.notify(len(numbers))

    def queued(self) -> list[int]:
        return [json.loads(i.body)["payload"]["n"] for i in self.queue.peek(100_000)]


def reading(n: int) -> bytes:
    return json.dumps(
        {
            "node_id": "n-1",
            "sensor_type": "sim",
            "payload": {"n": n},
            "timestamp": "2026-11-22T12:00:00Z",
        }
    ).encode()


def envelope(
    status: int, code: str, details: list[dict[str, Any]] | None = None, **headers: str
) -> httpx.Response:
    body = {
        "error": {
            "code": code,
            "message": code.replace("_", " "),
            "details": details or [],
            "request_id": "r",
        }
    }
    return httpx.Response(status, json=body, headers=headers)


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Rig]]:
    clients: list[httpx.AsyncClient] = []

    def make(*script: Answer, backlog: int = 0, **push: Any) -> Rig:
        clock = FakeClock()
        queue = ReadingQueue(tmp_path / f"q{len(clients)}.sqlite3")
        if backlog:
            queue.put_many([reading(-k) for k in range(1, backlog + 1)], 0.0)
        server = ScriptedServer(list(script))
        client = httpx.AsyncClient(
            transport=httpx.MockTransport(server.handle), base_url="http://bw"
        )
        clients.append(client)
        sender = ReadingSender(
            client, lambda: "bwn_token", clock, gzip_min_bytes=push.pop("gzip_min_bytes", 1024)
        )
        settings = PushSettings(**{"batch_max": 100, "batch_age_s": 1.0, **push})
        pusher = Pusher(queue, sender, clock, settings, jitter=lambda d: d, offload=inline)
        return Rig(pusher, queue, server, clock, client)

    yield make
    for client in clients:
        await client.aclose()


async def test_a_stored_batch_is_forgotten(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(gzip_min_bytes=100)
    rig.put(1, 2, 3)
    cycle = await rig.pusher.push_once()
    assert (cycle.sent, cycle.stored, cycle.dead, cycle.delay_s) == (3, 3, 0, 1.0)
    assert rig.queued() == []
    (request,) = rig.server.requests
    assert request.url.path == "/api/readings"
    assert request.headers["authorization"] == "Bearer bwn_token"
    assert request.headers["content-encoding"] == "gzip"
    stream = rig.queue.stream
    assert rig.server.batches[0] == [
        {
            "node_id": "n-1",
            "sensor_type": "sim",
            "payload": {"n": n},
            "timestamp": "2026-11-22T12:00:00Z",
            "reading_id": f"{stream}:{n}",
        }
        for n in (1, 2, 3)
    ]


async def test_small_bodies_are_not_compressed_and_an_empty_queue_sends_nothing(
    rig_factory: Callable[..., Rig],
) -> None:
    rig = rig_factory()
    cycle = await rig.pusher.push_once()
    assert (cycle.sent, cycle.verdict, cycle.delay_s) == (0, None, 1.0)
    rig.put(1)
    await rig.pusher.push_once()
    assert "content-encoding" not in rig.server.requests[0].headers


async def test_a_400_dead_letters_exactly_the_named_items_and_resends_the_rest_at_once(
    rig_factory: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    details = [
        {"index": 1, "field": "payload.n", "message": "must be small"},
        {"index": 3, "field": "timestamp", "message": "needs a zone"},
    ]
    rig = rig_factory(envelope(400, "schema_violation", details))
    rig.put(10, 11, 12, 13, 14)
    cycle = await rig.pusher.push_once()
    assert (cycle.sent, cycle.stored, cycle.dead, cycle.delay_s) == (5, 0, 2, 0.0)
    assert rig.queued() == [10, 12, 14]
    letters = {d.reading_id: d.error for d in rig.queue.dead_letters()}
    stream = rig.queue.stream
    assert letters == {
        f"{stream}:2": "HTTP 400 schema_violation: schema violation (request r) — payload.n: must be small",
        f"{stream}:4": "HTTP 400 schema_violation: schema violation (request r) — timestamp: needs a zone",
    }
    assert "moved to dead letters" in caplog.text
    cycle = await rig.pusher.push_once()
    assert (cycle.stored, rig.server.numbers()) == (3, [10, 12, 14])
    assert rig.queued() == []


@pytest.mark.parametrize(
    "answer",
    [
        envelope(401, "unauthenticated"),
        envelope(403, "forbidden"),
        envelope(404, "not_found"),
        httpx.Response(405, text="Method Not Allowed"),
        envelope(422, "unprocessable"),
        envelope(400, "unsupported_protocol_version"),
    ],
)
async def test_refusals_keep_everything_report_loudly_and_retry_slowly(
    rig_factory: Callable[..., Rig], answer: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory(answer, answer, slow_retry_s=240)
    rig.put(1, 2)
    for attempt in (1, 2):
        cycle = await rig.pusher.push_once()
        assert (cycle.stored, cycle.dead, cycle.delay_s) == (0, 0, 240)
        assert cycle.verdict is not None
        assert cycle.verdict.action is Action.REFUSED
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == attempt
    assert rig.queued() == [1, 2]
    assert rig.pusher.problem is not None
    assert rig.pusher.errors_total == 2
    cycle = await rig.pusher.push_once()
    assert (cycle.stored, rig.pusher.problem, rig.queued()) == (2, None, [])


async def test_a_409_keeps_everything_and_says_who_holds_the_node(
    rig_factory: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_factory(envelope(409, "lease_held"), slow_retry_s=300)
    rig.put(1)
    cycle = await rig.pusher.push_once()
    assert (cycle.delay_s, rig.queued()) == (300, [1])
    assert "another instance holds this node" in caplog.text
    assert "lease held" in caplog.text


async def test_a_hold_from_the_node_stops_writing(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(slow_retry_s=300)
    rig.put(1)
    rig.pusher.hold = "instance abc holds n-1"
    cycle = await rig.pusher.push_once()
    assert (cycle.sent, cycle.delay_s, rig.server.requests) == (0, 300, [])


async def test_413_splits_until_the_server_takes_it(rig_factory: Callable[..., Rig]) -> None:
    def at_most_two(batch: list[dict[str, Any]]) -> httpx.Response:
        if len(batch) > 2:
            return envelope(413, "payload_too_large")
        return httpx.Response(200, json={"accepted": len(batch)})

    rig = rig_factory(*[at_most_two] * 20)
    rig.put(*range(7))
    cycle = await rig.pusher.push_once()
    assert (cycle.stored, rig.queued()) == (7, [])
    stored = [b for b in rig.server.batches if len(b) <= 2]
    assert sorted(item["payload"]["n"] for b in stored for item in b) == list(range(7))
    assert rig.pusher.batch_limit == 1  # 7 → 3 (refused) → 1: later batches start small
    assert [len(b) for b in rig.server.batches] == [7, 3, 1, 2, 4, 2, 2]


async def test_a_single_reading_too_large_becomes_a_dead_letter(
    rig_factory: Callable[..., Rig],
) -> None:
    rig = rig_factory(envelope(413, "payload_too_large"))
    rig.put(1)
    cycle = await rig.pusher.push_once()
    assert (cycle.dead, rig.queued()) == (1, [])
    (letter,) = rig.queue.dead_letters()
    assert letter.error.startswith("the server refuses this reading alone as too large (413)")


@pytest.mark.parametrize("status", [429, 503])
async def test_overload_waits_as_long_as_retry_after_says(
    rig_factory: Callable[..., Rig], status: int
) -> None:
    rig = rig_factory(
        envelope(status, "busy", **{"Retry-After": "17"}),
        envelope(status, "busy", **{"Retry-After": "99999"}),
        envelope(status, "busy"),
        retry_after_max_s=600,
        backoff_base_s=2,
    )
    rig.put(1)
    delays = [(await rig.pusher.push_once()).delay_s for _ in range(3)]
    assert delays == [17, 600, 2]
    assert rig.queued() == [1]


async def test_server_errors_and_no_answer_back_off_exponentially_for_ever(
    rig_factory: Callable[..., Rig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    script: list[Answer] = [
        httpx.Response(500, text="boom"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(502),
        httpx.Response(504),
        httpx.Response(500),
        httpx.Response(500),
    ]
    rig = rig_factory(*script, backoff_base_s=1, backoff_max_s=30)
    rig.put(1, 2)
    delays = [(await rig.pusher.push_once()).delay_s for _ in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert rig.queued() == [1, 2]
    assert len([r for r in caplog.records if "retrying with backoff" in r.message]) == 1
    cycle = await rig.pusher.push_once()
    assert (cycle.stored, rig.pusher.backoff.attempts) == (2, 0)
    assert "pushing recovered after 7 failed attempts" in caplog.text


async def test_jitter_is_applied_to_backoff(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    queue.put_many([reading(1)], 0.0)
    server = ScriptedServer([httpx.Response(500)] * 3)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(server.handle), base_url="http://bw"
    ) as client:
        clock = FakeClock()
        sender = ReadingSender(client, lambda: "t", clock)
        pusher = Pusher(
            queue,
            sender,
            clock,
            PushSettings(backoff_base_s=4),
            jitter=lambda d: d / 4,
            offload=inline,
        )
        assert [(await pusher.push_once()).delay_s for _ in range(3)] == [1, 2, 4]


async def test_a_full_batch_is_followed_at_once(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(batch_max=3)
    rig.put(*range(7))
    delays = [(await rig.pusher.push_once()).delay_s for _ in range(3)]
    assert delays == [0.0, 0.0, 1.0]
    assert [len(b) for b in rig.server.batches] == [3, 3, 1]


async def test_after_an_outage_live_readings_go_first_and_the_backlog_drains_at_a_bounded_rate(
    rig_factory: Callable[..., Rig],
) -> None:
    # 2000 readings (negative numbers) waited through a restart; 100/s of backlog at most.
    rig = rig_factory(backlog=2000, batch_max=50, backlog_rate=100)
    sent_backlog = 0
    for second in range(11):
        if second:
            await rig.clock.advance(1.0)
        rig.put(100 + second)
        first_request = len(rig.server.batches)
        while (await rig.pusher.push_once()).delay_s == 0:  # full batches follow at once
            pass
        batches = rig.server.batches[first_request:]
        assert batches[0][-1]["payload"]["n"] == 100 + second  # live first, never held back
        sent_backlog += sum(1 for b in batches for item in b if item["payload"]["n"] < 0)
        assert sent_backlog <= 100 + 100 * second  # a bucket of 100 plus 100/s
    assert sent_backlog == 100 + 100 * 10
    assert len(rig.queued()) == 2000 - sent_backlog


async def test_when_an_outage_ends_what_queued_meanwhile_becomes_backlog(
    rig_factory: Callable[..., Rig],
) -> None:
    rig = rig_factory(httpx.Response(503), batch_max=10, backlog_rate=5)
    rig.put(1)
    await rig.pusher.push_once()  # outage: 503
    rig.put(*range(2, 40))  # queued during the outage
    await rig.pusher.push_once()  # recovered: sends 10 of the outage's readings
    assert rig.pusher.live_floor == rig.queue.last_seq
    rig.put(99)
    await rig.pusher.push_once()
    assert rig.server.numbers() == [*range(11, 20), 99]  # the bucket starts full (batch_max)
    await rig.clock.advance(1.0)
    rig.put(100)
    await rig.pusher.push_once()
    assert rig.server.numbers() == [*range(20, 26), 100]  # 1 token left + 5/s


async def test_the_loop_batches_by_size_or_age(rig_factory: Callable[..., Rig]) -> None:
    import asyncio

    rig = rig_factory(batch_max=5, batch_age_s=2.0)
    stop = asyncio.Event()
    task = asyncio.create_task(rig.pusher.run(stop))
    await rig.clock.advance(0.1)
    rig.put(1, 2)
    await rig.clock.advance(0.5)
    assert rig.server.batches == []  # waits for company or for age
    await rig.clock.advance(2.0)
    assert rig.server.numbers() == [1, 2]
    rig.put(3, 4, 5, 6, 7)  # a full batch wakes the loop without waiting
    await rig.clock.advance(0.01)
    assert rig.server.numbers() == [3, 4, 5, 6, 7]
    stop.set()
    rig.pusher.wake.set()
    await rig.clock.advance(5)
    await task


async def test_drain_pushes_everything_until_empty_or_failing(
    rig_factory: Callable[..., Rig],
) -> None:
    rig = rig_factory(batch_max=4)
    rig.put(*range(10))
    assert await rig.pusher.drain(5.0) == 10
    rig2 = rig_factory(httpx.Response(500), batch_max=4)
    rig2.put(1)
    assert await rig2.pusher.drain(5.0) == 0
    assert rig2.queued() == [1]
