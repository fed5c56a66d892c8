"""The retention policy (``fleet.retention``): defaults, first matching override per retention,
errors that name the key, cuts rounded to the hour; and a rule's ``notify`` channels."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.fleet.alerts import RuleError, parse_rules
from beamwarden.fleet.retention import (
    DAY_US,
    HOUR_US,
    RetentionError,
    RetentionPolicy,
    StreamRetention,
    cutoff_us,
    parse_retention,
)

POLICY = parse_retention(
    {
        "overrides": [
            {"sensor_type": "geiger", "raw_days": 730},
            {"node": ["bench-3", "bench-4"], "raw_days": 7, "minute_days": 7},
            {"sensor_id": "ble:A4:C1", "node": "bench-3", "hour_days": 3650},
        ]
    }
)


def test_the_issue_s_defaults() -> None:
    assert RetentionPolicy().for_stream("n", "climate", "bme") == StreamRetention(30, 365, 0)


@pytest.mark.parametrize(
    ("node", "sensor_type", "sensor_id", "want"),
    [
        ("lab-1", "climate", "bme", (30, 365, 0)),  # no override
        ("lab-1", "geiger", "g", (730, 365, 0)),
        ("bench-3", "geiger", "g", (730, 7, 0)),  # raw from the first, minutes from the second
        ("bench-4", "climate", "bme", (7, 7, 0)),
        ("bench-3", "climate", "ble:A4:C1", (7, 7, 3650)),  # every key of the third matches
        ("bench-4", "climate", "ble:A4:C1", (7, 7, 0)),  # its node does not
    ],
)
def test_the_first_override_that_matches_and_sets_a_retention_decides_it(
    node: str, sensor_type: str, sensor_id: str, want: tuple[float, float, float]
) -> None:
    assert POLICY.for_stream(node, sensor_type, sensor_id) == StreamRetention(*want)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"raw_days": -1}, "raw_days: Input should be greater than or equal to 0"),
        ({"raw_days": "x"}, "raw_days: Input should be a valid number"),
        ({"hour_days": float("inf")}, "hour_days: Input should be a finite number"),
        ({"keep": 1}, "keep: Extra inputs are not permitted"),
        ({"overrides": [{"raw_days": 1}]}, "overrides[0]: an override names node, sensor_type"),
        ({"overrides": [{"node": "n"}]}, "overrides[0]: an override sets raw_days, minute_days"),
        (
            {"overrides": [{"node": "n", "raw_days": 1}, {"node": [3], "raw_days": 1}]},
            "overrides[1]: node.0: Input should be a valid string",
        ),
        ({"overrides": "geiger"}, "overrides: Input should be a valid tuple"),
    ],
)
def test_a_bad_policy_names_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(RetentionError) as caught:
        parse_retention(doc)
    assert str(caught.value).startswith(message)


@given(st.integers(0, 2**60), st.floats(0.001, 10_000))
def test_a_cut_is_days_ago_rounded_down_to_the_hour(now: int, days: float) -> None:
    cut = cutoff_us(now, days)
    assert cut is not None
    assert cut % HOUR_US == 0
    assert now - round(days * DAY_US) - HOUR_US < cut <= now - round(days * DAY_US)


def test_zero_days_is_kept_for_ever() -> None:
    assert cutoff_us(10**15, 0) is None


def test_a_rule_names_its_channels_which_must_be_configured() -> None:
    doc = {
        "rules": [
            {"name": "a", "kind": "stale", "notify": "ops"},
            {"name": "b", "kind": "stale", "notify": ["ops", "phone"]},
            {"name": "c", "kind": "stale"},
        ]
    }
    rules = parse_rules(doc, {"ops": "x", "phone": "y"}).rules
    assert [r.notify for r in rules] == [("ops",), ("ops", "phone"), ()]
    assert parse_rules(doc).rules[1].notify == ("ops", "phone")  # no channels given: not checked
    with pytest.raises(RuleError) as caught:
        parse_rules(doc, ["ops"])
    assert str(caught.value) == (
        "rule 'b' (rules[1]): notify: no notification channel 'phone' "
        "(configured in notify_urls: ops)"
    )
    with pytest.raises(RuleError, match=r"configured in notify_urls: none"):
        parse_rules(doc, [])
