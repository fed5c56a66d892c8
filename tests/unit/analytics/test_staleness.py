"""Unit tests of ``fleet.staleness``: each stream's expected interval is learned from its gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from beamwarden.fleet.staleness import (
    DEFAULT_POLICY,
    StalenessPolicy,
    StreamCadence,
    StreamFreshness,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def feed(seconds: list[float], policy: StalenessPolicy = DEFAULT_POLICY) -> StreamCadence:
    state = StreamCadence()
    for s in seconds:
        state = state.observe(T0 + timedelta(seconds=s), policy)
    return state


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_unknown_before_any_reading() -> None:
    state = StreamCadence()
    assert state.status(T0) is StreamFreshness.UNKNOWN
    assert not state.is_stale(T0)
    assert state.expected_interval() == DEFAULT_POLICY.default_interval_s


def test_a_ten_minute_sensor_is_not_stale_at_five_minutes() -> None:
    state = feed([i * 600 for i in range(6)])
    last = 5 * 600
    assert state.expected_interval() == 600
    assert state.status(at(last + 300)) is StreamFreshness.FRESH
    assert state.status(at(last + 1200)) is StreamFreshness.FRESH
    assert state.status(at(last + 1800)) is StreamFreshness.FRESH  # exactly 3 intervals
    assert state.status(at(last + 1801)) is StreamFreshness.STALE


def test_default_interval_until_enough_gaps() -> None:
    state = feed([0, 600])  # one gap is not enough to trust
    assert state.gaps == (600.0,)
    assert state.expected_interval() == 60.0
    assert state.is_stale(at(600 + 181))


def test_an_outage_is_not_learned() -> None:
    state = feed([0, 10, 20, 30, 40, 3_640, 3_650])
    assert state.expected_interval() == 10
    assert 3_600.0 not in state.gaps
    assert state.long_gaps == ()  # a normal gap after the outage ends the run


def test_a_new_slower_cadence_is_adopted() -> None:
    state = feed([0, 10, 20, 30, 600, 1_200])
    assert state.long_gaps == (570.0, 600.0)
    assert state.expected_interval() == 10
    state = state.observe(at(1_800))
    assert state.long_gaps == ()
    assert state.gaps == (570.0, 600.0, 600.0)
    assert state.expected_interval() == 600


def test_out_of_order_and_duplicates_change_nothing() -> None:
    state = feed([0, 10, 20])
    assert state.observe(at(15)) is state
    assert state.observe(at(20)) is state


def test_the_median_ignores_one_lost_reading() -> None:
    state = feed([0, 10, 20, 40, 50, 60])
    assert state.expected_interval() == 10


def test_history_is_bounded() -> None:
    state = feed([i * 5 for i in range(100)], StalenessPolicy(history=4))
    assert state.gaps == (5.0, 5.0, 5.0, 5.0)


def test_sub_second_streams_have_a_floor() -> None:
    state = feed([i * 0.01 for i in range(10)])
    assert state.stale_after() == timedelta(seconds=1)


def test_round_trip_through_plain_data() -> None:
    state = feed([0, 10, 20, 30, 600])
    data = state.to_dict()
    assert data == {
        "last_seen": "2026-11-22T12:10:00+00:00",
        "gaps": [10.0, 10.0, 10.0],
        "long_gaps": [570.0],
    }
    assert StreamCadence.from_dict(data) == state
    assert StreamCadence.from_dict(StreamCadence().to_dict()) == StreamCadence()


@given(
    interval=st.integers(min_value=1, max_value=3_600),
    jitter=st.lists(st.floats(min_value=-0.2, max_value=0.2), min_size=4, max_size=40),
)
def test_regular_cadence_with_jitter_is_learned(interval: int, jitter: list[float]) -> None:
    times = [i * interval + j * interval for i, j in enumerate(jitter)]
    state = feed(times)
    assert 0.6 * interval <= state.expected_interval() <= 1.4 * interval
    last = times[-1]
    assert not state.is_stale(at(last + 1.5 * interval))
    assert state.is_stale(at(last + 5 * interval))


@given(st.lists(st.floats(min_value=0, max_value=1e6), max_size=60))
def test_last_seen_never_moves_back(times: list[float]) -> None:
    state = StreamCadence()
    latest: float | None = None
    for t in times:
        state = state.observe(at(t))
        latest = t if latest is None else max(latest, t)
        assert state.last_seen == at(latest)
        assert len(state.gaps) <= DEFAULT_POLICY.history
        assert all(g > 0 for g in state.gaps)
