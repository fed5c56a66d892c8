"""Room: fleet (pure; stdlib ``math`` only). Exact (Garwood) Poisson confidence intervals.

A Geiger counter's counts are Poisson: ``n`` counts in ``t`` seconds estimate the rate ``n / t``,
and the exact central interval of the mean at confidence ``1 − α`` is (Garwood, 1936)::

    lower = χ²(α/2; 2n) / 2        (0 when n = 0)
    upper = χ²(1 − α/2; 2n + 2) / 2

Since ``χ²(p; 2k) / 2`` is the ``p`` quantile of the Gamma(k, 1) distribution, both ends are
quantiles of the regularised incomplete gamma function, computed here in pure Python (series /
continued fraction, then a safeguarded Newton inversion), so the server needs no SciPy. The tests
compare every figure with ``scipy.stats.chi2`` (a development-only dependency).

Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import FleetError

#: relative precision the quantiles are solved to
_EPS = 1e-15
_TINY = 1e-300


class AnalyticsError(FleetError, ValueError):
    """Invalid input to the fleet analytics (a bad window, a negative count, an unknown tube …).

    The base of the analytics errors (``RuleError`` derives from it); a ``ValueError`` too, for
    callers that catch that.
    """


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirling_error(a: float) -> float:
    """``lgamma(a) − ((a − ½)·log a − a + ½·log 2π)`` for ``a ≥ 100`` (its asymptotic series)."""
    inv = 1.0 / a
    inv2 = inv * inv
    return inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))


def _log_prefactor(a: float, x: float) -> float:
    """``log(x^a e^-x / Γ(a))``, the common factor of the series and the continued fraction.

    For a large ``a`` the direct form subtracts numbers near ``a·log a`` and keeps only ~1e-9 of
    its precision; rewritten around ``x = a`` with ``log1p`` and Stirling's series it keeps ~1e-15.
    """
    d = (x - a) / a
    if a < 100.0 or abs(d) > 0.5:
        return a * math.log(x) - x - math.lgamma(a)
    return a * (math.log1p(d) - d) + 0.5 * math.log(a) - _HALF_LOG_2PI - _stirling_error(a)


def _max_terms(a: float) -> int:
    """Both expansions need O(√a) terms where they are slowest (x near a); this is ample."""
    return 1_000 + 20 * math.isqrt(int(a))


def _lower_series(a: float, x: float) -> float:
    """P(a, x) by its power series; converges quickly for ``x < a + 1``."""
    term = total = 1.0 / a
    n = a
    for _ in range(_max_terms(a)):  # pragma: no branch - the bound only guards against NaN
        n += 1.0
        term *= x / n
        total += term
        if not abs(term) >= abs(total) * _EPS:
            break
    return total * math.exp(_log_prefactor(a, x))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction (modified Lentz); converges quickly for ``x ≥ a + 1``."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _max_terms(a)):  # pragma: no branch - the bound only guards against NaN
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if not abs(delta - 1.0) >= _EPS:
            break
    return h * math.exp(_log_prefactor(a, x))


def gamma_p_q(a: float, x: float) -> tuple[float, float]:
    """The regularised incomplete gamma functions ``(P(a, x), Q(a, x))``, ``a > 0``, ``x ≥ 0``.

    The smaller of the two is computed directly and the other as its complement, so tail
    probabilities keep their relative precision.
    """
    if x <= 0.0:
        return 0.0, 1.0
    if x < a + 1.0:
        p = _lower_series(a, x)
        return p, 1.0 - p
    q = _upper_fraction(a, x)
    return 1.0 - q, q


def gamma_quantile(a: float, p: float) -> float:
    """The ``p`` quantile of Gamma(a, 1): the ``x`` with ``P(a, x) = p``, for ``0 < p < 1``."""
    if not a > 0.0 or not 0.0 < p < 1.0:
        raise AnalyticsError(f"gamma_quantile needs a > 0 and 0 < p < 1, not a={a}, p={p}")
    # Solve in whichever tail is smaller, so a p near 1 keeps its precision (1 − p is exact here).
    lower_tail = p <= 0.5
    target = p if lower_tail else 1.0 - p

    def excess(x: float) -> float:
        pp, qq = gamma_p_q(a, x)
        return pp - target if lower_tail else target - qq

    hi = max(1.0, 2.0 * a)
    while excess(hi) < 0.0:
        hi *= 2.0
    # Near 0, P(a, x) ≈ x^a / Γ(a + 1): a first guess that can be hundreds of decades small.
    guess = math.exp(max((math.log(p) + math.lgamma(a + 1.0)) / a, -745.0)) if lower_tail else hi
    if guess < _TINY:  # the quantile is below the doubles we resolve (a tiny ``a``)
        return 0.0
    lo = min(guess, 0.5 * hi)
    while excess(lo) > 0.0:
        if lo == _TINY:  # pragma: no cover - defensive: the guess is within decades of the root
            return 0.0
        lo = max(lo * 1e-8, _TINY)
    x = guess if lo < guess < hi else math.sqrt(lo) * math.sqrt(hi)
    for _ in range(400):
        f = excess(x)
        if f == 0.0:  # pragma: no cover - an exact root is luck
            return x
        if f < 0.0:
            lo = x
        else:
            hi = x
        density = math.exp(_log_prefactor(a, x) - math.log(x))
        candidate = x - f / density if density > 0.0 else hi
        if not lo < candidate < hi:  # Newton left the bracket: bisect (in log space if wide)
            candidate = math.sqrt(lo) * math.sqrt(hi) if hi > 4.0 * lo else 0.5 * (lo + hi)
        if abs(candidate - x) <= 4 * _EPS * candidate or hi - lo <= _EPS * hi:
            return candidate
        x = candidate
    return x  # pragma: no cover - each step at least halves the bracket (in linear or log space)


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise AnalyticsError(f"confidence must be between 0 and 1 (exclusive), not {confidence}")
    return 1.0 - confidence


@dataclass(frozen=True, slots=True)
class CountInterval:
    """The exact central confidence interval of a Poisson mean, from ``counts`` observed."""

    counts: float
    confidence: float
    lower: float
    upper: float


def count_interval(counts: float, confidence: float = 0.95) -> CountInterval:
    """Garwood's exact interval for the mean of a Poisson count (``counts ≥ 0``).

    A non-integer ``counts`` (a sum of averaged CPS samples) uses the same gamma quantiles.
    """
    alpha = _check_confidence(confidence)
    if not math.isfinite(counts) or counts < 0:
        raise AnalyticsError(f"counts must be a finite number ≥ 0, not {counts}")
    lower = 0.0 if counts == 0 else gamma_quantile(counts, alpha / 2.0)
    upper = gamma_quantile(counts + 1.0, 1.0 - alpha / 2.0)
    return CountInterval(counts, confidence, lower, upper)


@dataclass(frozen=True, slots=True)
class RateInterval:
    """A count rate (per second) with its exact confidence interval."""

    counts: float
    seconds: float
    confidence: float
    rate: float
    lower: float
    upper: float

    @property
    def per_minute(self) -> tuple[float, float, float]:
        """``(rate, lower, upper)`` in counts per minute."""
        return self.rate * 60.0, self.lower * 60.0, self.upper * 60.0


def rate_interval(counts: float, seconds: float, confidence: float = 0.95) -> RateInterval:
    """The rate ``counts / seconds`` and its exact interval (the count's interval over ``t``)."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise AnalyticsError(f"seconds must be a finite number > 0, not {seconds}")
    ci = count_interval(counts, confidence)
    return RateInterval(
        counts, seconds, confidence, counts / seconds, ci.lower / seconds, ci.upper / seconds
    )
