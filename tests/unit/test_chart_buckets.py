"""Unit tests of the chart bucket choice (``services.queries.chart_bucket_s``): never more buckets
than pixels, and the finest "nice" step that fits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import from_us
from beamwarden.server.services.queries import (
    CHART_STEPS_S,
    chart_bucket_s,
    chart_buckets,
    chart_range,
)

S = 1_000_000
T0 = 1_800_000_000 * S  # a multiple of a day
DAY = 86_400 * S


@pytest.mark.parametrize(
    ("span_s", "width", "bucket_s"),
    [
        (3600, 60, 60),
        (3600, 400, 10),
        (86_400, 100, 900),  # 864 s a pixel → 15 min
        (86_400, 1000, 120),
        (7 * 86_400, 1000, 900),  # 605 s a pixel → 15 min: rollups of whole minutes
        (7 * 86_400, 600, 1800),
        (60, 4000, 1),
        (366 * 86_400, 16, 24 * 86_400),  # past a week: whole days
    ],
)
def test_examples(span_s: int, width: int, bucket_s: int) -> None:
    assert chart_bucket_s(T0, T0 + span_s * S, width) == bucket_s


@given(
    st.integers(0, 10 * DAY),
    st.integers(1, 366 * DAY),
    st.integers(1, 4000),
)
def test_never_more_buckets_than_pixels_and_the_finest_step_that_fits(
    offset: int, span: int, width: int
) -> None:
    since = T0 + offset
    bucket = chart_bucket_s(since, since + span, width)
    assert chart_buckets(since, since + span, bucket) <= width
    finer = [s for s in CHART_STEPS_S if s < bucket]
    if finer:
        assert chart_buckets(since, since + span, finer[-1]) > width


def test_bad_ranges_and_widths_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        chart_bucket_s(T0, T0, 100)
    with pytest.raises(ValueError, match="empty"):
        chart_bucket_s(T0, T0 + S, 0)
    for since, until, width in (
        (T0, T0, 100),
        (T0, T0 + 367 * DAY, 100),
        (T0, T0 + DAY, 15),
        (T0, T0 + DAY, 4001),
    ):
        with pytest.raises(InvalidRequest):
            chart_range(from_us(since), from_us(until), width)
    assert chart_range(from_us(T0), from_us(T0 + DAY), 16) == 7200
