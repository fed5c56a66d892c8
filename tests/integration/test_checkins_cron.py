"""The check-ins' own cron parser (no dependency): fields, ranges, steps, lists, day rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.server.errors import InvalidRequest
from beamwarden.server.services.checkins import CronSchedule

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("* * * * *", T0, T0 + timedelta(minutes=1)),
        ("30 2 * * *", T0, datetime(2026, 11, 23, 2, 30, tzinfo=UTC)),
        ("*/15 * * * *", T0 + timedelta(minutes=1), T0 + timedelta(minutes=15)),
        ("0 9-17/4 * * *", T0, datetime(2026, 11, 22, 13, 0, tzinfo=UTC)),
        ("0 0 1 * *", T0, datetime(2026, 12, 1, tzinfo=UTC)),
        ("0 8 * * 1-5", T0, datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),  # Monday
        ("0 8 * * 0", T0, datetime(2026, 11, 29, 8, 0, tzinfo=UTC)),  # next Sunday
        ("0 8 * * 7", T0, datetime(2026, 11, 29, 8, 0, tzinfo=UTC)),  # 7 is Sunday too
        ("0 0 13 * 5", T0, datetime(2026, 11, 27, tzinfo=UTC)),  # day 13 OR a Friday
        ("5,10 12 * * *", T0, T0 + timedelta(minutes=5)),
        ("0 0 29 2 *", T0, datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_next_after(expr: str, after: datetime, expected: datetime) -> None:
    assert CronSchedule.parse(expr).next_after(after) == expected


def test_a_date_that_never_comes() -> None:
    assert CronSchedule.parse("0 0 31 2 *").next_after(T0) is None


@pytest.mark.parametrize(
    "expr", ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "a * * * *"]
)
def test_invalid_expressions_are_refused(expr: str) -> None:
    with pytest.raises(InvalidRequest):
        CronSchedule.parse(expr)


@given(
    st.integers(0, 59),
    st.integers(0, 23),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
)
def test_a_daily_schedule_comes_within_a_day_at_its_time(
    minute: int, hour: int, after: datetime
) -> None:
    got = CronSchedule.parse(f"{minute} {hour} * * *").next_after(after)
    assert got is not None
    assert (got.hour, got.minute, got.second) == (hour, minute, 0)
    assert after < got <= after + timedelta(days=1)
