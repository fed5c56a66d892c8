"""Unit tests of ``fleet.status``: a node's status from the age of its last heartbeat.

PROTOCOL.md: ``online`` if a ≤ 2i, ``degraded`` if a ≤ 5i, ``offline`` otherwise, ``unknown``
before any heartbeat. Time is always an argument: ``now`` is fixed here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from beamwarden.fleet import node_status, status_at_age, status_limits_us
from beamwarden.fleet.status import DEGRADED_INTERVALS, ONLINE_INTERVALS
from beamwarden.protocol import NodeStatus

NOW = datetime(2025, 3, 14, 14, 26, 53, 123456, tzinfo=UTC)
US = timedelta(microseconds=1)
ONLINE, DEGRADED, OFFLINE = NodeStatus.ONLINE, NodeStatus.DEGRADED, NodeStatus.OFFLINE


def status_at(age: timedelta, interval: float) -> NodeStatus:
    return node_status(NOW - age, interval, NOW)


def test_the_rule_is_2i_and_5i() -> None:
    assert (ONLINE_INTERVALS, DEGRADED_INTERVALS) == (2, 5)


def test_unknown_before_any_heartbeat() -> None:
    assert node_status(None, 30, NOW) is NodeStatus.UNKNOWN


@pytest.mark.parametrize("interval", [1, 2.5, 15, 30, 60, 300, 86_400, 1.005, 1.1, 0.7, 7.3])
def test_exact_boundaries(interval: float) -> None:
    i = timedelta(seconds=interval)
    assert status_at(timedelta(0), interval) is ONLINE
    assert status_at(i, interval) is ONLINE
    assert status_at(2 * i - US, interval) is ONLINE
    assert status_at(2 * i, interval) is ONLINE  # a ≤ 2i
    assert status_at(2 * i + US, interval) is DEGRADED
    assert status_at(5 * i - US, interval) is DEGRADED
    assert status_at(5 * i, interval) is DEGRADED  # a ≤ 5i
    assert status_at(5 * i + US, interval) is OFFLINE
    assert status_at(timedelta(days=365), interval) is OFFLINE


@pytest.mark.parametrize(
    ("age_seconds", "expected"),
    [(0, ONLINE), (59, ONLINE), (60, ONLINE), (61, DEGRADED), (150, DEGRADED), (151, OFFLINE)],
)
def test_default_interval_of_30_seconds(age_seconds: int, expected: NodeStatus) -> None:
    assert status_at(timedelta(seconds=age_seconds), 30) is expected


def test_boundary_is_exact_where_floating_point_is_not() -> None:
    # 5 * 1.005 == 5.0249999999999995 in floating point; the age 5.025 s is still ≤ 5i.
    assert 5 * 1.005 < 5.025
    assert status_at(timedelta(seconds=5.025), 1.005) is DEGRADED
    assert status_at(timedelta(seconds=5.025) + US, 1.005) is OFFLINE


@pytest.mark.parametrize("ahead", [US, timedelta(seconds=1), timedelta(hours=5)])
def test_heartbeat_from_the_future_counts_as_age_0(ahead: timedelta) -> None:
    assert node_status(NOW + ahead, 30, NOW) is ONLINE


def test_status_uses_instants_not_wall_clock_offsets() -> None:
    paris = timezone(timedelta(hours=1))
    last = (NOW - timedelta(seconds=61)).astimezone(paris)
    assert node_status(last, 30, NOW) is DEGRADED


ORDER = {ONLINE: 0, DEGRADED: 1, OFFLINE: 2}
ages = st.integers(min_value=-(10**9), max_value=10**12).map(lambda us: timedelta(microseconds=us))
intervals = st.floats(min_value=0.001, max_value=86_400, allow_nan=False) | st.integers(1, 86_400)


@settings(max_examples=200)
@given(ages, ages, intervals)
def test_status_is_monotone_in_age(a: timedelta, b: timedelta, interval: float) -> None:
    younger, older = sorted((a, b))
    assert ORDER[status_at(younger, interval)] <= ORDER[status_at(older, interval)]


@settings(max_examples=200)
@given(ages, intervals)
@example(timedelta(seconds=5.025), 1.005)
@example(timedelta(seconds=0.055), 0.011)
def test_status_matches_the_rule_in_exact_arithmetic(age: timedelta, interval: float) -> None:
    i_us = timedelta(seconds=interval) // US
    a_us = age // US
    expected = ONLINE if a_us <= 2 * i_us else DEGRADED if a_us <= 5 * i_us else OFFLINE
    assert status_at(age, interval) is expected


@settings(max_examples=200)
@given(ages, intervals)
@example(timedelta(seconds=5.025), 1.005)
@example(timedelta(seconds=-1), 30)
def test_the_integer_rule_a_listing_uses_is_the_same_rule(age: timedelta, interval: float) -> None:
    # a listing of 10 000 nodes computes the limits once per interval and compares integers
    assert status_at_age(age // US, status_limits_us(interval)) is status_at(age, interval)


def test_status_limits_are_2i_and_5i_in_whole_microseconds() -> None:
    assert status_limits_us(30) == (60_000_000, 150_000_000)
    assert status_limits_us(1.005) == (2_010_000, 5_025_000)
