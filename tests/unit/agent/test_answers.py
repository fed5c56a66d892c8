"""PROTOCOL.md's sender table, answer by answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from beamwarden.agent.push.answers import Action, Verdict, classify, no_answer, retry_after_seconds

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def envelope(code: str, message: str, details: list[object] | None = None) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "details": details or [], "request_id": "r1"}}
    ).encode()


def test_2xx_means_stored() -> None:
    assert classify(200, {}, b'{"accepted":1,"duplicates":0}', 1, NOW) == Verdict(
        Action.STORED, 200, "HTTP 200"
    )


def test_a_400_naming_items_makes_exactly_those_invalid() -> None:
    body = envelope(
        "schema_violation",
        "2 invalid readings",
        [
            {"index": 1, "field": "payload.temp", "message": "not a climate field"},
            {"index": 1, "field": "timestamp", "message": "needs a zone"},
            {"index": 3, "field": "", "message": "empty"},
            {"index": 99, "field": "x", "message": "out of the batch: ignored"},
            {"field": "x", "message": "no index: ignored"},
            "not a detail",
        ],
    )
    assert classify(400, {}, body, 5, NOW) == Verdict(
        Action.INVALID,
        400,
        "HTTP 400 schema_violation: 2 invalid readings (request r1)",
        invalid={
            1: "payload.temp: not a climate field; timestamp: needs a zone",
            3: "(item): empty",
        },
    )


@pytest.mark.parametrize(
    "body",
    [
        envelope("unsupported_protocol_version", "speak 1.x"),
        envelope("schema_violation", "bad", [{"index": None, "field": "", "message": "not JSON"}]),
        b"<html>Bad Request</html>",
    ],
)
def test_a_400_naming_no_item_keeps_everything(body: bytes) -> None:
    assert classify(400, {}, body, 3, NOW).action is Action.REFUSED


@pytest.mark.parametrize("status", [401, 403, 404, 405, 410, 418, 422])
def test_auth_and_configuration_problems_keep_everything(status: int) -> None:
    verdict = classify(status, {}, envelope("nope", "refused"), 3, NOW)
    assert (verdict.action, verdict.status, verdict.invalid) == (Action.REFUSED, status, {})


def test_409_413_and_5xx() -> None:
    holder = envelope("lease_held", "node n-1 is held by instance abc")
    assert classify(409, {}, holder, 1, NOW) == Verdict(
        Action.CONFLICT,
        409,
        "HTTP 409 lease_held: node n-1 is held by instance abc (request r1)",
        code="lease_held",
    )
    assert classify(413, {}, b"", 1, NOW).action is Action.TOO_LARGE
    for status in (500, 502, 504, 599):
        assert classify(status, {}, b"oops", 1, NOW) == Verdict(
            Action.TRANSIENT, status, f"HTTP {status}: oops"
        )


@pytest.mark.parametrize("status", [429, 503])
def test_overload_honours_retry_after(status: int) -> None:
    verdict = classify(status, {"retry-after": "7"}, b"", 1, NOW)
    assert (verdict.action, verdict.retry_after_s) == (Action.OVERLOADED, 7.0)
    assert classify(status, {}, b"", 1, NOW).retry_after_s is None


def test_retry_after_forms() -> None:
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds(" 1.5 ", NOW) == 1.5
    assert retry_after_seconds("-3", NOW) == 0.0
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Sun, 22 Nov 2026 11:00:00 GMT", NOW) == 0.0
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


def test_no_answer_is_transient() -> None:
    verdict = no_answer(ConnectionRefusedError("refused"))
    assert verdict == Verdict(Action.TRANSIENT, None, "no answer: ConnectionRefusedError: refused")
