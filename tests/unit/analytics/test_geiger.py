"""Unit tests of ``fleet.geiger``: windowed CPS statistics, CPM, dose, dead time, the summary.

The checks of issue 7 are here word for word; time is always an argument (``NOW`` is fixed).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.fleet.geiger import (
    MAX_LOSS_FRACTION,
    TUBE_FACTORS,
    AnalyticsError,
    DeadTimeCorrection,
    DoseRate,
    GeigerSummary,
    TubeFactor,
    WindowStats,
    cpm_from_cps,
    dead_time_correct,
    dose_rate,
    summarise,
    tube_factor,
    tube_key,
    window_stats,
)
from beamwarden.fleet.poisson import rate_interval

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# --- the issue's checks -------------------------------------------------------------------------


def test_only_the_reading_inside_the_window_counts() -> None:
    stats = window_stats([(ago(30), 10), (ago(120), 20)], NOW, MINUTE)
    assert stats == WindowStats(ago(60), NOW, 1, 10.0, 10, 10)


def test_both_ends_are_inclusive() -> None:
    stats = window_stats([(ago(60), 7), (ago(61), 99), (NOW, 3)], NOW, MINUTE)
    assert (stats.count, stats.minimum, stats.maximum) == (2, 3, 7)
    assert window_stats([(ago(61), 99)], NOW, MINUTE).count == 0


def test_mean_min_max_of_the_issue() -> None:
    readings = [(ago(i), cps) for i, cps in enumerate([1, 5, 10, 50, 100, 200, 500])]
    stats = window_stats(readings, NOW, MINUTE)
    assert stats.count == 7
    assert stats.mean == pytest.approx(123.714, abs=5e-4)
    assert (stats.minimum, stats.maximum) == (1, 500)
    assert stats.cpm == pytest.approx(123.714 * 60, abs=0.03)


def test_empty_window_has_null_statistics_and_its_bounds() -> None:
    assert window_stats([], NOW, MINUTE) == WindowStats(ago(60), NOW, 0, None, None, None)
    assert window_stats([], NOW, MINUTE).cpm is None


# --- window edge cases --------------------------------------------------------------------------


def test_reading_from_the_future_is_outside() -> None:
    assert window_stats([(NOW + timedelta(microseconds=1), 5)], NOW, MINUTE).count == 0


def test_zero_window_holds_only_now() -> None:
    assert window_stats([(NOW, 4), (ago(0.001), 5)], NOW, timedelta(0)).count == 1


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_cps_is_refused_with_its_index(bad: float) -> None:
    with pytest.raises(AnalyticsError, match="reading 1"):
        window_stats([(NOW, 1), (NOW, bad)], NOW, MINUTE)


def test_negative_window_is_refused() -> None:
    with pytest.raises(AnalyticsError, match="window"):
        window_stats([], NOW, -MINUTE)


@given(
    st.lists(st.tuples(st.integers(min_value=-200, max_value=200), st.floats(0, 1e6)), max_size=50),
    st.integers(min_value=0, max_value=150),
)
def test_window_matches_a_plain_filter(points: list[tuple[int, float]], width: int) -> None:
    readings = [(ago(s), cps) for s, cps in points]
    inside = [cps for s, cps in points if 0 <= s <= width]
    stats = window_stats(readings, NOW, timedelta(seconds=width))
    assert stats.count == len(inside)
    if inside:
        assert stats.minimum == min(inside)
        assert stats.maximum == max(inside)
        assert stats.mean is not None
        assert min(inside) <= stats.mean * (1 + 1e-12) + 1e-9
        assert stats.mean <= max(inside) * (1 + 1e-12) + 1e-9
    else:
        assert stats.mean is None


# --- CPM and dose -------------------------------------------------------------------------------


def test_cpm_is_sixty_times_cps() -> None:
    assert cpm_from_cps(2.5) == 150.0


@pytest.mark.parametrize(
    ("name", "usv_h_per_cpm"),
    [
        ("SBM-20", 0.0057471),
        ("sbm20", 0.0057471),
        ("SI-29BG", 0.01),
        ("J305", 0.0081204),
        ("M4011", 0.0065020),
        ("LND 712", 0.0092593),
        ("lnd-712", 0.0092593),
    ],
)
def test_factors_of_the_issues_tubes(name: str, usv_h_per_cpm: float) -> None:
    found = tube_factor(name)
    assert found is not None
    assert found.usv_h_per_cpm == pytest.approx(usv_h_per_cpm, rel=1e-4)


def test_every_factor_has_a_source_and_a_sane_value() -> None:
    assert len(TUBE_FACTORS) >= 10
    for key, factor in TUBE_FACTORS.items():
        assert key == tube_key(factor.tube)
        assert factor.source
        assert factor.calibration
        assert 0 < factor.usv_h_per_cpm < 1
        assert factor.cpm_per_usv_h == pytest.approx(1 / factor.usv_h_per_cpm)


def test_unknown_tube_has_no_factor() -> None:
    assert tube_factor("ZP1481") is None
    assert dose_rate(100, tube="ZP1481") is None
    assert dose_rate(100) is None


def test_dose_from_a_known_tube() -> None:
    dose = dose_rate(153.8, tube="M4011")
    assert dose == DoseRate(pytest.approx(1.0), TUBE_FACTORS["M4011"])


def test_callers_factor_wins() -> None:
    assert dose_rate(100, tube="SBM-20", factor=0.01) == DoseRate(
        pytest.approx(1.0), TubeFactor("SBM-20", 0.01, "configured", "configured")
    )
    assert dose_rate(100, factor=0.02) == DoseRate(
        pytest.approx(2.0), TubeFactor("custom", 0.02, "configured", "configured")
    )


def test_configured_override_of_a_tube() -> None:
    overrides = {"sbm 20": 0.006315}
    assert tube_factor("SBM-20", overrides) == TubeFactor(
        "SBM-20", 0.006315, "configured", "configured"
    )
    assert tube_factor("J305", overrides) == TUBE_FACTORS["J305"]
    dose = dose_rate(1000, tube="SBM20", overrides=overrides)
    assert dose is not None
    assert dose.usv_per_hour == pytest.approx(6.315)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bad_factors_are_refused(bad: float) -> None:
    with pytest.raises(AnalyticsError, match="conversion factor"):
        dose_rate(10, factor=bad)
    with pytest.raises(AnalyticsError, match="SBM-20"):
        tube_factor("SBM20", {"SBM-20": bad})


def test_negative_cpm_is_refused() -> None:
    with pytest.raises(AnalyticsError, match="cpm"):
        dose_rate(-1, factor=0.01)


# --- dead time ----------------------------------------------------------------------------------


def test_dead_time_correction() -> None:
    corrected = dead_time_correct(1000, 190e-6)
    assert corrected == DeadTimeCorrection(
        1000, 190e-6, pytest.approx(1000 / (1 - 0.19)), pytest.approx(0.19), True
    )


def test_dead_time_beyond_the_bound_is_flagged() -> None:
    corrected = dead_time_correct(2000, 190e-6)
    assert corrected.loss_fraction == pytest.approx(0.38)
    assert not corrected.within_bound
    assert dead_time_correct(2000, 190e-6, max_loss_fraction=0.5).within_bound
    assert MAX_LOSS_FRACTION == 0.2


def test_no_dead_time_is_no_correction() -> None:
    assert dead_time_correct(50, 0.0) == DeadTimeCorrection(50, 0.0, 50.0, 0.0, True)


@pytest.mark.parametrize(("cps", "tau"), [(10_000, 1e-4), (20_000, 1e-4)])
def test_impossible_measurement_is_refused(cps: float, tau: float) -> None:
    with pytest.raises(AnalyticsError, match="cannot measure"):
        dead_time_correct(cps, tau)


@pytest.mark.parametrize("tau", [-1e-6, math.nan])
def test_bad_dead_time_is_refused(tau: float) -> None:
    with pytest.raises(AnalyticsError, match="dead time"):
        dead_time_correct(10, tau)


@given(st.floats(0, 5_000), st.floats(0, 1e-4))
def test_correction_never_lowers_the_rate(cps: float, tau: float) -> None:
    corrected = dead_time_correct(cps, tau)
    assert corrected.true_cps >= cps
    assert corrected.true_cps * (1 - corrected.loss_fraction) == pytest.approx(cps)


# --- the summary --------------------------------------------------------------------------------


def test_summary_of_a_minute() -> None:
    readings = [(ago(s), 2.0) for s in range(60)]  # 60 one-second samples at 2 cps = 120 counts
    device = [(ago(5), 0.7), (ago(15), 0.9), (ago(600), 50.0)]
    summary = summarise(readings, NOW, MINUTE, tube="J305", device_usv_per_hour=device)
    rate = rate_interval(120, 60.0)
    factor = TUBE_FACTORS["J305"]
    assert summary == GeigerSummary(
        stats=WindowStats(ago(60), NOW, 60, 2.0, 2.0, 2.0),
        cpm=120.0,
        dead_time=None,
        dose=DoseRate(pytest.approx(120 * factor.usv_h_per_cpm), factor),
        device_usv_per_hour=pytest.approx(0.8),
        rate=rate,
        dose_interval=(
            pytest.approx(rate.lower * 60 * factor.usv_h_per_cpm),
            pytest.approx(rate.upper * 60 * factor.usv_h_per_cpm),
        ),
    )
    assert summary.dose_interval is not None
    assert summary.dose is not None
    assert summary.dose_interval[0] < summary.dose.usv_per_hour < summary.dose_interval[1]


def test_summary_of_an_empty_window() -> None:
    summary = summarise([(ago(600), 5.0)], NOW, MINUTE, tube="SBM-20")
    assert summary == GeigerSummary(
        WindowStats(ago(60), NOW, 0, None, None, None), None, None, None, None, None, None
    )


def test_summary_without_a_tube_has_no_dose_but_an_interval() -> None:
    summary = summarise([(ago(1), 3.0)], NOW, MINUTE, sample_seconds=10.0)
    assert summary.dose is None
    assert summary.dose_interval is None
    assert summary.rate == rate_interval(30.0, 10.0)


def test_summary_with_dead_time_corrects_dose_and_interval() -> None:
    readings = [(ago(s), 1000.0) for s in range(10)]
    summary = summarise(readings, NOW, MINUTE, factor=0.01, dead_time_s=190e-6)
    assert summary.dead_time is not None
    true_cps = 1000 / (1 - 0.19)
    assert summary.cpm == pytest.approx(true_cps * 60)
    assert summary.dose is not None
    assert summary.dose.usv_per_hour == pytest.approx(true_cps * 60 * 0.01)
    assert summary.dose_interval is not None
    low, high = summary.dose_interval
    assert low < summary.dose.usv_per_hour < high


def test_interval_end_beyond_the_dead_time_limit_is_unbounded() -> None:
    # one second at 5 000 cps with τ = 199 µs: m·τ = 0.995, the upper end of the rate passes 1/τ
    summary = summarise([(NOW, 5000.0)], NOW, MINUTE, factor=0.01, dead_time_s=199e-6)
    assert summary.dose_interval is not None
    assert summary.dose_interval[1] == math.inf


def test_summary_refuses_a_bad_sample_length() -> None:
    with pytest.raises(AnalyticsError, match="sample_seconds"):
        summarise([(NOW, 1.0)], NOW, MINUTE, sample_seconds=0)
