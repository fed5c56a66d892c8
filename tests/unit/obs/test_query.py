"""Unit tests of obs query parsing: every malformed parameter is an InvalidQuery naming it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.obs import InvalidQuery, Level, LogQuery, SampleQuery
from beamwarden.obs.query import (
    log_query_from_params,
    parse_since,
    sample_query_from_params,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1732280000.5", 1732280000.5),
        ("0", 0.0),
        ("30s", NOW - 30),
        ("15m", NOW - 900),
        ("2h", NOW - 7200),
        ("1.5d", NOW - 1.5 * 86400),
        ("2026-11-22T12:00:00Z", datetime(2026, 11, 22, 12, tzinfo=UTC).timestamp()),
        ("2026-11-22T13:00:00+01:00", datetime(2026, 11, 22, 12, tzinfo=UTC).timestamp()),
        ("2026-11-22T12:00:00", datetime(2026, 11, 22, 12, tzinfo=UTC).timestamp()),
    ],
)
def test_since_forms(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize(
    "text", ["", "  ", "-1", "nan", "inf", "yesterday", "5y", "0001-01-01T00:00:00+01:00"]
)
def test_bad_since(text: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_since(text, NOW)
    assert info.value.parameter == "since"


def test_log_query_from_params() -> None:
    assert log_query_from_params(
        {"since": ["10m"], "level": ["WARN"], "limit": ["50"], "cursor": ["17"]}, NOW
    ) == LogQuery(since=NOW - 600, min_level=Level.WARNING, after_id=17, limit=50)
    assert log_query_from_params({}, NOW) == LogQuery()
    assert sample_query_from_params({"name": ["jobs_total"]}, NOW) == SampleQuery(name="jobs_total")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"level": ["loud"]}, "level"),
        ({"limit": ["0"]}, "limit"),
        ({"limit": ["-3"]}, "limit"),
        ({"limit": ["10000000"]}, "limit"),
        ({"limit": ["١٢"]}, "limit"),
        ({"cursor": ["abc"]}, "cursor"),
        ({"cursor": ["1", "2"]}, "cursor"),
        ({"sincе": ["1"]}, "sincе"),
    ],
)
def test_bad_log_params(params: dict[str, list[str]], parameter: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        log_query_from_params(params, NOW)
    assert info.value.parameter == parameter


def test_bad_sample_name() -> None:
    with pytest.raises(InvalidQuery, match="name"):
        sample_query_from_params({"name": ["not a name"]}, NOW)


@given(
    st.dictionaries(
        st.sampled_from(["since", "level", "limit", "cursor", "x"]),
        st.lists(st.text(max_size=30), min_size=1, max_size=2),
    )
)
def test_any_params_give_a_query_or_invalid_query(params: dict[str, list[str]]) -> None:
    try:
        query = log_query_from_params(params, NOW)
    except InvalidQuery:
        return
    assert 1 <= query.limit <= 1_000_000
    assert query.after_id >= 0
