"""Unit tests of ``fleet.poisson``: Garwood intervals computed in pure Python, checked against SciPy.

SciPy is a development-only dependency: the server computes the quantiles itself.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammainc, gammaincc
from scipy.stats import chi2

from beamwarden.fleet.poisson import (
    AnalyticsError,
    CountInterval,
    RateInterval,
    count_interval,
    gamma_p_q,
    gamma_quantile,
    rate_interval,
)


def garwood(n: float, confidence: float) -> tuple[float, float]:
    alpha = 1 - confidence
    lower = 0.0 if n == 0 else chi2.ppf(alpha / 2, 2 * n) / 2
    return lower, chi2.ppf(1 - alpha / 2, 2 * n + 2) / 2


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 10, 20, 50, 100, 1_000, 10_000, 100_000, 1_000_000])
@pytest.mark.parametrize("confidence", [0.5, 0.68, 0.9, 0.95, 0.99, 0.999])
def test_matches_scipy_chi2(n: int, confidence: float) -> None:
    ci = count_interval(n, confidence)
    lower, upper = garwood(n, confidence)
    assert ci.lower == pytest.approx(lower, rel=1e-11, abs=1e-300)
    assert ci.upper == pytest.approx(upper, rel=1e-11)


def test_zero_counts_whole_object() -> None:
    # the textbook figure: 0 counts, 95 % -> [0, 3.689]
    ci = count_interval(0)
    assert ci == CountInterval(0, 0.95, 0.0, pytest.approx(3.6888794541139354, rel=1e-14))


def test_one_count_textbook_figures() -> None:
    ci = count_interval(1, 0.95)
    assert (round(ci.lower, 4), round(ci.upper, 3)) == (0.0253, 5.572)


@settings(max_examples=200, deadline=None)
@given(
    n=st.just(0.0) | st.floats(min_value=1e-3, max_value=50_000.0),
    confidence=st.floats(min_value=0.01, max_value=0.9999),
)
def test_any_count_and_confidence_matches_scipy(n: float, confidence: float) -> None:
    ci = count_interval(n, confidence)
    lower, upper = garwood(n, confidence)
    assert ci.lower == pytest.approx(lower, rel=1e-9, abs=1e-200)
    assert ci.upper == pytest.approx(upper, rel=1e-9)
    assert ci.lower <= n <= ci.upper or n == 0


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(min_value=1e-3, max_value=1e5),
    x=st.floats(min_value=0.0, max_value=2e5),
)
def test_incomplete_gamma_matches_scipy(a: float, x: float) -> None:
    # far in the tails of a large ``a``, x^a e^-x / Γ(a) is a difference of numbers near 1e6:
    # ~1e-10 relative is what a double gives there (the quantiles above are better than 1e-11)
    p, q = gamma_p_q(a, x)
    assert p == pytest.approx(float(gammainc(a, x)), rel=1e-8, abs=1e-280)
    assert q == pytest.approx(float(gammaincc(a, x)), rel=1e-8, abs=1e-280)


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(min_value=1e-2, max_value=1e5),
    p=st.floats(min_value=1e-12, max_value=1 - 1e-12),
)
def test_quantile_inverts(a: float, p: float) -> None:
    x = gamma_quantile(a, p)
    if x == 0.0:  # a tiny ``a``: the quantile is below the smallest double we resolve
        assert gamma_p_q(a, 1e-300)[0] >= p
        return
    # the inverse of P (or of Q in the upper tail, where P is too close to 1 to resolve)
    pp, qq = gamma_p_q(a, x)
    if p <= 0.5:
        assert pp == pytest.approx(p, rel=1e-9)
    else:
        assert qq == pytest.approx(1 - p, rel=1e-9)


def test_rate_interval_divides_by_time() -> None:
    rate = rate_interval(600, 60.0)
    ci = count_interval(600)
    assert rate == RateInterval(600, 60.0, 0.95, 10.0, ci.lower / 60, ci.upper / 60)
    assert rate.per_minute == (600.0, ci.lower, pytest.approx(ci.upper))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: count_interval(-1), "counts must be"),
        (lambda: count_interval(math.nan), "counts must be"),
        (lambda: count_interval(5, 1.0), "confidence"),
        (lambda: count_interval(5, 0.0), "confidence"),
        (lambda: rate_interval(5, 0.0), "seconds must be"),
        (lambda: rate_interval(5, math.inf), "seconds must be"),
        (lambda: gamma_quantile(0.0, 0.5), "a > 0"),
        (lambda: gamma_quantile(1.0, 1.0), "a > 0"),
    ],
)
def test_invalid_arguments(call: object, message: str) -> None:
    with pytest.raises(AnalyticsError, match=message):
        call()  # type: ignore[operator]


def test_gamma_at_zero() -> None:
    assert gamma_p_q(3.0, 0.0) == (0.0, 1.0)


def test_is_a_value_error() -> None:
    assert issubclass(AnalyticsError, ValueError)
