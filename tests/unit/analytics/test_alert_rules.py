"""Unit tests of ``fleet.alerts.rules``: parsing TOML-shaped rule documents, with clear errors."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, time

import pytest

from beamwarden.fleet.alerts import (
    BatteryLowRule,
    ClockSkewRule,
    MaintenanceWindow,
    NodeStatusRule,
    QueueBacklogRule,
    RateOfChangeRule,
    RuleError,
    RuleSet,
    Scope,
    Silence,
    StaleRule,
    ThresholdRule,
    parse_duration,
    parse_rules,
)
from beamwarden.fleet.poisson import AnalyticsError
from beamwarden.protocol import NodeStatus

EXAMPLE = """
[[rules]]
name = "attic-too-warm"
kind = "threshold"
field = "temperature_c"
above = 29.4
clear_below = 26.7
for = "5m"
repeat = "4h"
severity = "critical"
scope = { room = ["attic"], sensor_type = "climate" }

[[rules]]
name = "geiger-high"
kind = "threshold"
field = "cpm"
above = 100
n_of_m = [3, 5]

[[rules]]
name = "warming-fast"
kind = "rate_of_change"
field = "temperature_c"
above = 2.0
window = "10m"

[[rules]]
name = "quiet-sensor"
kind = "stale"

[[rules]]
name = "battery"
kind = "battery_low"
clear_above = 25

[[rules]]
name = "down"
kind = "node_status"
statuses = ["degraded", "offline"]
scope = { site = "lab" }

[[rules]]
name = "skew"
kind = "clock_skew"

[[rules]]
name = "backlog"
kind = "queue_backlog"
above = 5000

[[silences]]
name = "moving the attic sensor"
rules = "attic-too-warm"
starts = 2026-11-22T10:00:00Z
ends = 2026-11-22T12:00:00Z

[[maintenance]]
name = "nightly backup"
days = ["sun"]
start = 02:00:00
duration = "1h"
scope = { node = ["nas-1"] }
"""


def test_the_documented_example_parses_whole() -> None:
    rules = parse_rules(tomllib.loads(EXAMPLE))
    assert rules == RuleSet(
        rules=(
            ThresholdRule(
                name="attic-too-warm",
                kind="threshold",
                field="temperature_c",
                above=29.4,
                clear_below=26.7,
                for_=300.0,
                repeat=14_400.0,
                severity="critical",
                scope=Scope(room=("attic",), sensor_type=("climate",)),
            ),
            ThresholdRule(
                name="geiger-high", kind="threshold", field="cpm", above=100, n_of_m=(3, 5)
            ),
            RateOfChangeRule(
                name="warming-fast",
                kind="rate_of_change",
                field="temperature_c",
                above=2.0,
                window=600,
            ),
            StaleRule(name="quiet-sensor", kind="stale"),
            BatteryLowRule(name="battery", kind="battery_low", clear_above=25),
            NodeStatusRule(
                name="down",
                kind="node_status",
                statuses=(NodeStatus.DEGRADED, NodeStatus.OFFLINE),
                scope=Scope(site=("lab",)),
            ),
            ClockSkewRule(name="skew", kind="clock_skew"),
            QueueBacklogRule(name="backlog", kind="queue_backlog", above=5000),
        ),
        silences=(
            Silence(
                name="moving the attic sensor",
                rules=("attic-too-warm",),
                starts=datetime(2026, 11, 22, 10, tzinfo=UTC),
                ends=datetime(2026, 11, 22, 12, tzinfo=UTC),
            ),
        ),
        maintenance=(
            MaintenanceWindow(
                name="nightly backup",
                days=("sun",),
                start=time(2, 0),
                duration=3600,
                scope=Scope(node=("nas-1",)),
            ),
        ),
    )


def test_defaults_of_the_preset_kinds() -> None:
    rules = parse_rules(tomllib.loads(EXAMPLE)).rules
    battery, skew = rules[4], rules[6]
    assert isinstance(battery, BatteryLowRule)
    assert (battery.field, battery.threshold, battery.clear_line) == ("battery_pct", 20.0, 25.0)
    assert isinstance(skew, ClockSkewRule)
    assert (skew.threshold, skew.clear_line) == (30.0, 30.0)
    assert parse_rules({}) == RuleSet()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "a", "kind": "threshold", "field": "x"},
            "rule 'a' (rules[0]): (the entry): give exactly one",
        ),
        (
            {"name": "a", "kind": "threshold", "field": "x", "above": 1, "below": 0},
            "give exactly one",
        ),
        ({"name": "a", "kind": "threshold", "field": "x", "above": "hot"}, "above: Input should"),
        (
            {"name": "a", "kind": "threshold", "above": 1},
            "rule 'a' (rules[0]): field: Field required",
        ),
        ({"name": "a", "kind": "thresold", "field": "x"}, "does not match any of the expected"),
        ({"name": "a", "field": "x"}, "rule 'a' (rules[0]): kind: missing"),
        ({"kind": "stale"}, "rules[0]: name: Field required"),
        (
            {"name": "a", "kind": "threshold", "field": "x", "above": 5, "clear_below": 6},
            "'clear_below' must not be higher",
        ),
        (
            {"name": "a", "kind": "threshold", "field": "x", "below": 5, "clear_above": 4},
            "'clear_above' must not be lower",
        ),
        (
            {"name": "a", "kind": "threshold", "field": "x", "above": 5, "clear_above": 4},
            "'clear_above' goes with 'below'",
        ),
        (
            {"name": "a", "kind": "threshold", "field": "x", "below": 5, "clear_below": 4},
            "'clear_below' goes with 'above'",
        ),
        (
            {"name": "a", "kind": "threshold", "field": "x", "above": 5, "n_of_m": [4, 3]},
            "n_of_m is [N, M]",
        ),
        ({"name": "a", "kind": "threshold", "field": "x", "above": 5, "for": "5 min"}, "for:"),
        ({"name": "a", "kind": "threshold", "field": "x", "above": 5, "repeat": 0}, "repeat must"),
        ({"name": "a", "kind": "threshold", "field": "x", "above": 5, "colour": "red"}, "colour"),
        ({"name": "a", "kind": "rate_of_change", "field": "x", "above": 1, "per": 0}, "per:"),
        (
            {"name": "a", "kind": "node_status", "scope": {"sensor_type": "climate"}},
            "do not apply to node rules",
        ),
        ({"name": "a", "kind": "stale", "factor": 0}, "factor"),
        ({"name": "a", "kind": "stale", "scope": {"building": "x"}}, "scope.building"),
    ],
)
def test_errors_name_the_rule_and_the_key(rule: dict[str, object], message: str) -> None:
    anchor = "^" if message.startswith("rule") else ""
    with pytest.raises(RuleError, match=anchor + re.escape(message)):
        parse_rules({"rules": [rule]})


def test_duplicate_names_are_refused() -> None:
    rule = {"name": "a", "kind": "stale"}
    with pytest.raises(RuleError, match=r"rule 'a' \(rules\[1\]\): name: another rule"):
        parse_rules({"rules": [rule, rule]})


def test_document_shape_errors() -> None:
    with pytest.raises(RuleError, match="unknown top-level key"):
        parse_rules({"rule": []})
    with pytest.raises(RuleError, match="must be a list of tables"):
        parse_rules({"rules": {"name": "a"}})


def test_silence_and_maintenance_errors() -> None:
    starts = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(RuleError, match=r"silence 'x' \(silences\[0\]\): \(the entry\): 'ends'"):
        parse_rules({"silences": [{"name": "x", "starts": starts, "ends": starts}]})
    with pytest.raises(RuleError, match=r"silences\[0\]: starts: a time needs a zone"):
        parse_rules({"silences": [{"starts": datetime(2026, 1, 1), "ends": starts}]})
    with pytest.raises(RuleError, match=r"maintenance\[0\]: duration"):
        parse_rules({"maintenance": [{"start": "02:00", "duration": "8d"}]})
    with pytest.raises(RuleError, match=r"maintenance 'm' \(maintenance\[0\]\): days"):
        parse_rules(
            {"maintenance": [{"name": "m", "start": "02:00", "duration": 60, "days": ["sunday"]}]}
        )


def test_rule_error_is_an_analytics_error() -> None:
    assert issubclass(RuleError, AnalyticsError)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172_800.0),
        ("1w", 604_800.0),
        ("250ms", 0.25),
        (" 1h 5m ", 3900.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "5 minutes", "m5", -1, True, None, float("inf")])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_timedelta_duration() -> None:
    from datetime import timedelta

    assert parse_duration(timedelta(minutes=2)) == 120.0


def test_maintenance_window_activity() -> None:
    window = MaintenanceWindow(days=("sun",), start=time(23, 0), duration=7200)
    sunday = datetime(2026, 11, 22, tzinfo=UTC)  # a Sunday
    assert sunday.weekday() == 6
    assert not window.active(sunday.replace(hour=22, minute=59))
    assert window.active(sunday.replace(hour=23))
    assert window.active(sunday.replace(day=23, hour=0, minute=59))  # Monday, across midnight
    assert not window.active(sunday.replace(day=23, hour=1))
    assert not window.active(sunday.replace(day=21, hour=23, minute=30))  # Saturday
