"""Unit tests of the exporters' retry rules and of one batch's send (httpx.MockTransport, time
injected: waits are recorded and advance a manual clock, nothing sleeps)."""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.obs import ManualClock
from beamwarden.obs.exporters import Outcome, Payload, RetryPolicy
from beamwarden.obs.exporters.retry import is_retryable_status, parse_retry_after
from beamwarden.obs.exporters.sender import HttpSender

T0 = 1_800_000_000.0
NO_JITTER = RetryPolicy(initial_backoff=1.0, max_backoff=8.0, jitter=0.0, deadline=60.0)


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    assert [NO_JITTER.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert NO_JITTER.backoff(10_000) == 8.0  # no overflow for absurd retry counts


@given(retry=st.integers(1, 50), seed=st.integers(0, 2**32))
def test_jitter_stays_within_its_fraction(retry: int, seed: int) -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=30.0, jitter=0.25)
    base = RetryPolicy(initial_backoff=0.5, max_backoff=30.0, jitter=0.0).backoff(retry)
    delay = policy.backoff(retry, random.Random(seed))
    assert base * 0.75 <= delay <= base * 1.25


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    assert NO_JITTER.wait_before(1, 7.0) == 7.0
    assert NO_JITTER.wait_before(3, None) == 4.0
    assert NO_JITTER.wait_before(1, 10_000.0) == NO_JITTER.max_retry_after


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),  # an HTTP date, counted from now
        ("Fri, 15 Jan 2027 07:59:00 GMT", 0.0),  # in the past: retry at once
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = T0  # Fri, 15 Jan 2027 08:00:00 GMT
    assert parse_retry_after(header, now) == expected


def test_only_the_try_again_statuses_are_retryable() -> None:
    assert {s for s in range(100, 600) if is_retryable_status(s)} == {429, 502, 503, 504}


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(initial_backoff=5.0, max_backoff=1.0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=0)


# -- the sender -------------------------------------------------------------------------------


class Timeline:
    """A manual clock that waits by moving itself; ``stop_after`` waits say "shutting down"."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.clock = ManualClock(T0)
        self.waits: list[float] = []
        self.stop_after = stop_after

    def wait(self, seconds: float) -> bool:
        if self.stop_after is not None and len(self.waits) >= self.stop_after:
            return True
        self.waits.append(seconds)
        self.clock.advance(seconds)
        return False


def sender_for(
    answers: list[httpx.Response | Exception],
    timeline: Timeline,
    policy: RetryPolicy = NO_JITTER,
    seen: list[httpx.Request] | None = None,
    **options: object,
) -> HttpSender:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return HttpSender(
        httpx.Client(transport=httpx.MockTransport(handler)),
        policy,
        wait=timeline.wait,
        monotonic=timeline.clock.now,
        clock=timeline.clock,
        **options,  # type: ignore[arg-type]
    )


PAYLOAD = Payload("http://receiver.test/v1/logs", b'{"x":1}', "application/json")
refused: Callable[[str], Exception] = lambda msg: httpx.ConnectError(msg)  # noqa: E731


def test_retries_the_try_again_answers_and_connection_errors_then_succeeds() -> None:
    timeline = Timeline()
    answers: list[httpx.Response | Exception] = [
        httpx.Response(503),
        refused("connection refused"),
        httpx.Response(429),
        httpx.Response(502),
        httpx.Response(504),
        httpx.Response(200),
    ]
    sender = sender_for(answers, timeline)
    result = sender.send(PAYLOAD)
    assert (result.outcome, result.attempts, result.status) == (Outcome.SENT, 6, 200)
    assert timeline.waits == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert sender.retries == 5


@pytest.mark.parametrize("status", [400, 401, 404, 413, 500, 501])
def test_a_final_answer_is_not_retried(status: int) -> None:
    timeline = Timeline()
    result = sender_for([httpx.Response(status, text="no")], timeline).send(PAYLOAD)
    assert (result.outcome, result.attempts, result.status, result.detail) == (
        Outcome.REFUSED,
        1,
        status,
        "no",
    )
    assert timeline.waits == []


def test_retry_after_is_honoured() -> None:
    timeline = Timeline()
    answers: list[httpx.Response | Exception] = [
        httpx.Response(429, headers={"Retry-After": "17"}),
        httpx.Response(503, headers={"Retry-After": "Fri, 15 Jan 2027 08:00:20 GMT"}),
        httpx.Response(204),
    ]
    result = sender_for(answers, timeline).send(PAYLOAD)
    assert result.outcome is Outcome.SENT
    # the date is 20 s after T0; 17 s have passed by then
    assert timeline.waits == [17.0, 3.0]


def test_everything_happens_under_one_deadline() -> None:
    timeline = Timeline()
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=8.0, jitter=0.0, deadline=10.0)
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [httpx.Response(503)] * 10
    result = sender_for(answers, timeline, policy, seen).send(PAYLOAD)
    # waits 1 + 2 + 4 = 7 s; the next (8 s) would end after the deadline: not started
    assert (result.outcome, result.attempts) == (Outcome.GAVE_UP, 4)
    assert timeline.waits == [1.0, 2.0, 4.0]
    assert len(seen) == 4


def test_a_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    timeline = Timeline()
    answers: list[httpx.Response | Exception] = [
        httpx.Response(503, headers={"Retry-After": "120"})
    ]
    result = sender_for(answers, timeline).send(PAYLOAD)
    assert (result.outcome, result.attempts, timeline.waits) == (Outcome.GAVE_UP, 1, [])


def test_each_attempt_gets_at_most_what_the_deadline_leaves() -> None:
    timeline = Timeline()
    seen: list[httpx.Request] = []
    policy = RetryPolicy(jitter=0.0, deadline=4.0, request_timeout=10.0, initial_backoff=1.0)
    answers: list[httpx.Response | Exception] = [httpx.Response(503), httpx.Response(200)]
    sender_for(answers, timeline, policy, seen).send(PAYLOAD)
    assert [r.extensions["timeout"]["read"] for r in seen] == [4.0, 3.0]


def test_shutdown_cuts_the_backoff_short() -> None:
    timeline = Timeline(stop_after=1)
    answers: list[httpx.Response | Exception] = [httpx.Response(503)] * 5
    result = sender_for(answers, timeline).send(PAYLOAD)
    assert (result.outcome, result.attempts, result.detail) == (
        Outcome.GAVE_UP,
        2,
        "shut down while waiting",
    )


def test_gzip_and_headers() -> None:
    seen: list[httpx.Request] = []
    sender = sender_for(
        [httpx.Response(200)],
        Timeline(),
        seen=seen,
        compression="gzip",
        headers={"Authorization": "Bearer t"},
    )
    sender.send(PAYLOAD)
    (request,) = seen
    assert request.method == "POST"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer t"
    assert gzip.decompress(request.content) == b'{"x":1}'
