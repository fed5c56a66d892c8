"""Unit tests of obs levels and records: the fixed level set, the message cap, JSON-safe attrs."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.obs import (
    HistogramValue,
    InvalidLevel,
    InvalidMetric,
    InvalidRecord,
    Level,
    LogRecord,
    MetricKind,
    MetricSample,
    new_log_record,
    new_sample,
    parse_level,
)
from beamwarden.obs.levels import level_from_number
from beamwarden.obs.records import MAX_ATTRS_BYTES, MAX_MESSAGE_CHARS, json_safe_attrs

T0 = 1_800_000_000.0


@given(st.sampled_from(list(Level)), st.data())
def test_levels_parse_in_any_case(level: Level, data: st.DataObject) -> None:
    name = "".join(c.upper() if data.draw(st.booleans()) else c.lower() for c in level.name)
    assert parse_level(f" {name} ") is level
    assert level.label == level.name.lower()


def test_aliases_and_unknown_levels() -> None:
    assert parse_level("warn") is Level.WARNING
    assert parse_level("FATAL") is Level.CRITICAL
    with pytest.raises(InvalidLevel, match="unknown level 'verbose'"):
        parse_level("verbose")
    assert issubclass(InvalidLevel, ValueError)


@pytest.mark.parametrize(
    ("number", "level"),
    [
        (0, Level.DEBUG),
        (5, Level.DEBUG),
        (logging.INFO, Level.INFO),
        (25, Level.INFO),
        (49, Level.ERROR),
        (99, Level.CRITICAL),
    ],
)
def test_stdlib_numbers_map_to_the_level_at_or_below(number: int, level: Level) -> None:
    assert level_from_number(number) is level


def test_a_valid_record_is_the_whole_expected_object() -> None:
    record = new_log_record(
        "Warning", "disk low", ts=T0, logger="agent", attrs={"free": 1.5, "paths": ("a", "b")}
    )
    assert record == LogRecord(
        T0, Level.WARNING, "disk low", "agent", {"free": 1.5, "paths": ["a", "b"]}, 0
    )
    assert record.as_json() == {
        "id": 0,
        "ts": T0,
        "level": "warning",
        "logger": "agent",
        "message": "disk low",
        "attrs": {"free": 1.5, "paths": ["a", "b"]},
    }


def test_long_messages_are_cut_and_say_so() -> None:
    record = new_log_record("info", "x" * (MAX_MESSAGE_CHARS + 10), ts=T0)
    assert len(record.message) == MAX_MESSAGE_CHARS
    assert record.attrs == {"truncated": MAX_MESSAGE_CHARS + 10}


@pytest.mark.parametrize(
    ("attrs", "problem"),
    [
        ({"x": object()}, "not JSON-safe"),
        ({"x": math.nan}, "finite"),
        ({"x": 2**64}, "64 bits"),
        ({"x": {1: "a"}}, "keys are strings"),
        ({"x": "y" * MAX_ATTRS_BYTES}, "more than"),
    ],
)
def test_unsafe_attributes_are_refused(attrs: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidRecord, match=problem):
        new_log_record("info", "m", ts=T0, attrs=attrs)


def test_coerced_attributes_become_strings() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing!"

    assert json_safe_attrs(
        {"t": Thing(), "nan": math.nan, "big": 2**70, "keys": {1: 2}}, coerce=True
    ) == {"t": "thing!", "nan": "nan", "big": str(2**70), "keys": {"1": 2}}
    assert json_safe_attrs({"x": "y" * MAX_ATTRS_BYTES}, coerce=True) == {
        "attrs_dropped_bytes": MAX_ATTRS_BYTES + 8
    }


def test_deep_nesting_is_refused_or_cut() -> None:
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(InvalidRecord, match="deeper"):
        json_safe_attrs({"d": deep})
    assert json_safe_attrs({"d": deep}, coerce=True)["d"] is not None


def test_records_need_a_finite_time_and_a_string_message() -> None:
    with pytest.raises(InvalidRecord, match="finite"):
        new_log_record("info", "m", ts=math.inf)
    with pytest.raises(InvalidRecord, match="string"):
        new_log_record("info", 42, ts=T0)  # type: ignore[arg-type]
    assert new_log_record("info", 42, ts=T0, coerce=True).message == "42"  # type: ignore[arg-type]


def test_samples_are_checked() -> None:
    assert new_sample("up", "gauge", 1, ts=T0, labels={"b": "2", "a": 1}) == MetricSample(  # type: ignore[dict-item]
        T0, "up", MetricKind.GAUGE, (("a", "1"), ("b", "2")), 1, 0
    )
    hist = HistogramValue((1.0,), (1, 2), 3.0)
    assert hist.observations == 2
    assert HistogramValue.from_json(hist.as_json()) == hist
    for bad in [
        lambda: new_sample("9lives", "gauge", 1, ts=T0),
        lambda: new_sample("x", "summary", 1, ts=T0),
        lambda: new_sample("x", "gauge", 1, ts=T0, labels={"__reserved": "1"}),
        lambda: new_sample("x", "gauge", 1, ts=T0, labels={"le": "1"}),
        lambda: new_sample("x", "gauge", 1, ts=T0, labels=[("a", "1"), ("a", "2")]),
        lambda: new_sample("x", "counter", -1, ts=T0),
        lambda: new_sample("x", "gauge", math.inf, ts=T0),
        lambda: new_sample("x", "histogram", 1.0, ts=T0),
        lambda: new_sample("x", "gauge", hist, ts=T0),
    ]:
        with pytest.raises(InvalidMetric):
            bad()
    with pytest.raises(InvalidRecord):
        HistogramValue.from_json({"bounds": [1], "counts": [1], "sum": 0})
