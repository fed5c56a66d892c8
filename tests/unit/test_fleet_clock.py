"""Unit tests of ``fleet.clock``: suspect timestamps and the clock-offset estimate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from beamwarden.fleet import ClockOffset, suspect_timestamp
from beamwarden.fleet.clock import EARLIEST_PLAUSIBLE, MAX_AHEAD

RECEIVED = datetime(2025, 3, 14, 14, 26, 53, tzinfo=UTC)
US = timedelta(microseconds=1)


def test_limits() -> None:
    assert datetime(2020, 1, 1, tzinfo=UTC) == EARLIEST_PLAUSIBLE
    assert timedelta(minutes=5) == MAX_AHEAD


@pytest.mark.parametrize(
    ("timestamp", "suspect"),
    [
        (datetime(2020, 1, 1, tzinfo=UTC), False),
        (datetime(2020, 1, 1, tzinfo=UTC) - US, True),
        (datetime(1970, 1, 1, tzinfo=UTC), True),  # a Pi without an RTC, before NTP
        (datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC), True),
        # 2020-01-01T00:30+01:00 is 2019-12-31T23:30Z: before 2020
        (datetime(2020, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), True),
        (RECEIVED, False),
        (RECEIVED - timedelta(days=30), False),  # late is fine (a queue drained)
        (RECEIVED + timedelta(minutes=5), False),
        (RECEIVED + timedelta(minutes=5) + US, True),
        (RECEIVED + timedelta(minutes=4, seconds=59), False),
        (RECEIVED + timedelta(days=365), True),
    ],
)
def test_suspect_timestamp(timestamp: datetime, suspect: bool) -> None:
    assert suspect_timestamp(timestamp, RECEIVED) is suspect


def test_suspect_timestamp_compares_instants() -> None:
    ahead = (RECEIVED + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-7)))
    assert suspect_timestamp(ahead, RECEIVED) is False
    assert suspect_timestamp(ahead + US, RECEIVED) is True


def test_first_sample() -> None:
    assert ClockOffset.first(RECEIVED + timedelta(seconds=1.5), RECEIVED) == ClockOffset(1.5, 1)
    assert ClockOffset.first(RECEIVED - timedelta(hours=1), RECEIVED) == ClockOffset(-3600.0, 1)
    assert ClockOffset.first(RECEIVED, RECEIVED) == ClockOffset(0.0, 1)


def test_update_is_a_moving_average() -> None:
    est = ClockOffset(1.0, 3)
    nxt = est.update(RECEIVED + timedelta(seconds=2), RECEIVED)
    assert nxt.samples == 4
    assert nxt.seconds == pytest.approx(1.0 + 0.2 * (2.0 - 1.0))


def test_update_converges_to_a_steady_offset() -> None:
    est = ClockOffset.first(RECEIVED, RECEIVED)
    for n in range(1, 60):
        t = RECEIVED + timedelta(seconds=10 * n)
        est = est.update(t + timedelta(seconds=1.25), t)
    assert est.seconds == pytest.approx(1.25, abs=1e-4)
    assert est.samples == 60


def test_update_returns_a_new_value() -> None:
    est = ClockOffset(0.0, 1)
    est.update(RECEIVED + timedelta(seconds=1), RECEIVED)
    assert est == ClockOffset(0.0, 1)
    with pytest.raises(AttributeError):
        est.seconds = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("sample", "restarts"),
    [
        (3.0, False),  # exactly STEP_SECONDS away: still the same clock
        (3.000001, True),
        (-1.0, False),
        (-1.000001, True),
        (1.0 + 3600, True),  # NTP synced a clock an hour behind... or ahead
        (1.0 - 3600, True),
    ],
)
def test_a_step_restarts_the_estimate(sample: float, restarts: bool) -> None:
    est = ClockOffset(1.0, 10)
    nxt = est.update(RECEIVED + timedelta(seconds=sample), RECEIVED)
    if restarts:
        assert nxt.samples == 1
        assert nxt.seconds == pytest.approx(sample)
    else:
        assert nxt.samples == 11
        assert nxt.seconds == pytest.approx(1.0 + 0.2 * (sample - 1.0))


def test_constants() -> None:
    assert ClockOffset.ALPHA == 0.2
    assert ClockOffset.STEP_SECONDS == 2.0


def test_plausible_window_is_the_suspect_rule() -> None:
    from beamwarden.fleet import plausible_window, suspect_timestamp

    received = datetime(2026, 11, 22, 12, tzinfo=UTC)
    lo, hi = plausible_window(received)
    for delta in (-1, 0, 1):
        for edge in (lo, hi):
            t = edge + timedelta(microseconds=delta)
            assert (lo <= t <= hi) is not suspect_timestamp(t, received)
