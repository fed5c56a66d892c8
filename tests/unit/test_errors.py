"""Unit tests of ``protocol.errors``: the exception tree and issues."""

from __future__ import annotations

import pytest

from beamwarden.protocol import (
    BatchTooLarge,
    Issue,
    ProtocolError,
    SchemaViolation,
    UnsupportedProtocolVersion,
)


def test_exception_tree() -> None:
    assert issubclass(ProtocolError, Exception)
    assert issubclass(SchemaViolation, ProtocolError)
    assert issubclass(BatchTooLarge, SchemaViolation)
    assert issubclass(UnsupportedProtocolVersion, ProtocolError)
    assert not issubclass(UnsupportedProtocolVersion, SchemaViolation)


def test_issue_as_dict_with_and_without_index() -> None:
    assert Issue(3, "payload.cps", "must be >= 0").as_dict() == {
        "index": 3,
        "field": "payload.cps",
        "message": "must be >= 0",
    }
    assert Issue(0, "", "x").as_dict() == {"index": 0, "field": "", "message": "x"}
    assert Issue(None, "readings", "bad").as_dict() == {"field": "readings", "message": "bad"}


def test_issue_is_frozen() -> None:
    issue = Issue(1, "f", "m")
    with pytest.raises(AttributeError):
        issue.index = 2  # type: ignore[misc]


def test_schema_violation_default_message() -> None:
    exc = SchemaViolation([Issue(None, "", "x")])
    assert exc.message == str(exc) == "the request does not follow the schema"
    assert exc.issues == [Issue(None, "", "x")]


def test_schema_violation_custom_message() -> None:
    exc = SchemaViolation([], "custom")
    assert (exc.message, str(exc), exc.issues) == ("custom", "custom", [])


def test_batch_too_large() -> None:
    exc = BatchTooLarge(10_001, 10_000)
    assert (exc.count, exc.limit) == (10_001, 10_000)
    assert exc.message == "batch of 10001 readings exceeds the limit of 10000; split it"
    assert exc.issues == [
        Issue(None, "", "10001 readings in one batch; at most 10000 are accepted")
    ]


def test_unsupported_protocol_version() -> None:
    exc = UnsupportedProtocolVersion("2.0")
    assert exc.version == "2.0"
    assert str(exc) == "protocol version '2.0' is not supported; this server speaks 1.x"
