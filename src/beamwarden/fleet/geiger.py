"""Room: fleet (pure; imports ``fleet.poisson`` only). Geiger analytics: windows, CPM, dose, dead time.

* :func:`window_stats`: count / mean / min / max of CPS over ``[now − w, now]``, both ends
  inclusive; an empty window has count 0, null statistics, and still its bounds.
* :func:`dose_rate`: µSv/h from CPM with a per-tube factor from :data:`TUBE_FACTORS` (each with its
  documented source) or a factor the caller passes.
* :func:`dead_time_correct`: the non-paralyzable correction ``n = m / (1 − m·τ)`` with its bound.
* :func:`summarise`: all of it for one window, next to the device's own dose value, with the
  exact Poisson interval of the rate (``fleet.poisson``).

A conversion factor is only true for the isotope the tube was calibrated with (usually Cs-137 or
Co-60): it turns counts into an *estimate* of the gamma dose rate. ``docs/analytics.md`` explains.
Nothing here reads a clock or does I/O: ``now`` is always an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .poisson import AnalyticsError, RateInterval, rate_interval

__all__ = [
    "TUBE_FACTORS",
    "AnalyticsError",
    "DeadTimeCorrection",
    "DoseRate",
    "GeigerSummary",
    "TubeFactor",
    "WindowStats",
    "cpm_from_cps",
    "dead_time_correct",
    "dose_rate",
    "summarise",
    "tube_factor",
    "window_stats",
]


@dataclass(frozen=True, slots=True)
class WindowStats:
    """CPS statistics over ``[start, end]`` (both inclusive); ``None`` statistics when empty."""

    start: datetime
    end: datetime
    count: int
    mean: float | None
    minimum: float | None
    maximum: float | None

    @property
    def cpm(self) -> float | None:
        """The mean rate in counts per minute."""
        return None if self.mean is None else cpm_from_cps(self.mean)


def _check_cps(value: float, where: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise AnalyticsError(f"{where}: CPS must be a finite number ≥ 0, not {value!r}")
    return value


def window_stats(
    readings: Iterable[tuple[datetime, float]], now: datetime, window: timedelta
) -> WindowStats:
    """Count / mean / min / max of the CPS readings with ``now − window ≤ timestamp ≤ now``.

    ``readings`` are ``(timestamp, cps)`` pairs in any order; readings outside the window are
    ignored (a reading "from the future" included). A negative or non-finite CPS is an error.
    """
    if window < timedelta(0):
        raise AnalyticsError(f"the window must not be negative, not {window}")
    start = now - window
    values: list[float] = []
    for index, (timestamp, cps) in enumerate(readings):
        if start <= timestamp <= now:
            values.append(_check_cps(cps, f"reading {index}"))
    if not values:
        return WindowStats(start, now, 0, None, None, None)
    return WindowStats(
        start, now, len(values), math.fsum(values) / len(values), min(values), max(values)
    )


def cpm_from_cps(cps: float) -> float:
    """Counts per minute from counts per second."""
    return cps * 60.0


@dataclass(frozen=True, slots=True)
class TubeFactor:
    """How many µSv/h one count per minute of a tube means, and where that figure comes from."""

    tube: str
    usv_h_per_cpm: float
    calibration: str
    source: str

    @property
    def cpm_per_usv_h(self) -> float:
        return 1.0 / self.usv_h_per_cpm


#: The tubes we know, keyed by :func:`tube_key`. Each factor quotes its source (a datasheet or the
#: maker of a counter built on the tube); "datasheet" figures are converted with the conventional
#: 1 mR/h ≈ 10 µSv/h. docs/analytics.md carries the same table with links.
TUBE_FACTORS: Mapping[str, TubeFactor] = {
    "SBM20": TubeFactor(
        "SBM-20",
        10.0 / (29 * 60),  # 0.005747 µSv/h per CPM = 174 CPM per µSv/h
        "Ra-226 (gamma)",
        "SBM-20 datasheet: gamma sensitivity to Ra-226 29 cps/mR/h (22 cps/mR/h for Co-60)",
    ),
    "SI29BG": TubeFactor(
        "SI-29BG",
        0.010000,
        "not stated (background-calibrated)",
        "Magnasci uRADMonitor KIT1 firmware, code/geiger/detectors.cpp: SI29BG factor 0.010000",
    ),
    "J305": TubeFactor(
        "J305",
        1.0 / 123.147092360319,  # 0.00812037
        "Co-60 (gamma)",
        "Libelium Radiation Sensor Board documentation (J305βγ): 123.147 cpm per µSv/h, "
        "factor 0.00812037",
    ),
    "M4011": TubeFactor(
        "M4011",
        1.0 / 153.8,  # 0.0065
        "SBM-20 Ra-226/Co-60 average, adopted for M4011",
        "GQ Electronics GMC-300E/320 default calibration: 153.8 cpm per µSv/h (0.0065)",
    ),
    "LND712": TubeFactor(
        "LND 712",
        10.0 / (18 * 60),  # 0.009259 µSv/h per CPM = 108 CPM per µSv/h
        "Co-60 (gamma)",
        "LND, Inc. 712 datasheet: gamma sensitivity to Co-60 18 cps/mR/h",
    ),
    "SBM19": TubeFactor(
        "SBM-19",
        0.001500,
        "not stated",
        "Magnasci uRADMonitor KIT1 firmware, code/geiger/detectors.cpp: SBM19 factor 0.001500",
    ),
    "STS5": TubeFactor(
        "STS-5",
        0.006666,
        "not stated",
        "Magnasci uRADMonitor KIT1 firmware, code/geiger/detectors.cpp: STS5 factor 0.006666",
    ),
    "SI22G": TubeFactor(
        "SI-22G",
        0.001714,
        "not stated",
        "Magnasci uRADMonitor KIT1 firmware, code/geiger/detectors.cpp: SI22G factor 0.001714",
    ),
    "SI3BG": TubeFactor(
        "SI-3BG",
        0.631578,
        "not stated",
        "Magnasci uRADMonitor KIT1 firmware, code/geiger/detectors.cpp: SI3BG factor 0.631578",
    ),
    "SBM21": TubeFactor(
        "SBM-21",
        0.048000,
        "not stated",
        "Magnasci uRADMonitor KIT1 firmware, code/geiger/detectors.cpp: SBM21 factor 0.048000",
    ),
}


def tube_key(name: str) -> str:
    """A tube's lookup key: ``"SBM-20"``, ``"sbm20"`` and ``"SBM 20"`` are the same tube."""
    return "".join(ch for ch in name.upper() if ch.isalnum())


def _check_factor(factor: float, where: str) -> float:
    if not math.isfinite(factor) or factor <= 0:
        raise AnalyticsError(f"{where}: a conversion factor must be a finite number > 0")
    return factor


def tube_factor(name: str, overrides: Mapping[str, float] | None = None) -> TubeFactor | None:
    """The factor of tube ``name``: a configured override first, then :data:`TUBE_FACTORS`.

    ``overrides`` maps tube names (any spelling) to µSv/h per CPM, e.g. from the server's settings
    after calibrating a counter. ``None`` for a tube nobody documented.
    """
    key = tube_key(name)
    for configured, factor in (overrides or {}).items():
        if tube_key(configured) == key:
            return TubeFactor(
                name, _check_factor(factor, f"tube {configured!r}"), "configured", "configured"
            )
    return TUBE_FACTORS.get(key)


@dataclass(frozen=True, slots=True)
class DoseRate:
    """A dose-rate estimate and the factor it was computed with."""

    usv_per_hour: float
    factor: TubeFactor


def dose_rate(
    cpm: float,
    *,
    tube: str | None = None,
    factor: float | None = None,
    overrides: Mapping[str, float] | None = None,
) -> DoseRate | None:
    """µSv/h from CPM: with the caller's ``factor`` (µSv/h per CPM) if given, else the tube's.

    ``None`` when neither a factor nor a known tube is given (the dashboard then shows only the
    device's own value).
    """
    _check_cps(cpm, "cpm")
    if factor is not None:
        chosen = TubeFactor(
            tube or "custom", _check_factor(factor, "factor"), "configured", "configured"
        )
    elif tube is not None and (found := tube_factor(tube, overrides)) is not None:
        chosen = found
    else:
        return None
    return DoseRate(cpm * chosen.usv_h_per_cpm, chosen)


#: Beyond this fraction of time lost (m·τ) the paralyzable and non-paralyzable models disagree by
#: more than ~4 %, so the corrected figure is flagged as outside the model's validity.
MAX_LOSS_FRACTION = 0.2


@dataclass(frozen=True, slots=True)
class DeadTimeCorrection:
    """A measured rate corrected for the counter's dead time (non-paralyzable model)."""

    measured_cps: float
    dead_time_s: float
    true_cps: float
    loss_fraction: float  # m·τ: the share of each second the counter was blind
    within_bound: bool  # loss_fraction ≤ the bound the correction was asked with


def dead_time_correct(
    measured_cps: float, dead_time_s: float, max_loss_fraction: float = MAX_LOSS_FRACTION
) -> DeadTimeCorrection:
    """``n = m / (1 − m·τ)``. Refused when ``m·τ ≥ 1`` (no true rate gives that measurement).

    ``within_bound`` says whether ``m·τ ≤ max_loss_fraction``; beyond it the figure is a guess.
    """
    _check_cps(measured_cps, "measured rate")
    if not math.isfinite(dead_time_s) or dead_time_s < 0:
        raise AnalyticsError(f"dead time must be a finite number ≥ 0 seconds, not {dead_time_s}")
    loss = measured_cps * dead_time_s
    if loss >= 1.0:
        raise AnalyticsError(
            f"m·τ = {loss:.3g} ≥ 1: a non-paralyzable counter with τ = {dead_time_s} s cannot "
            f"measure {measured_cps} cps"
        )
    return DeadTimeCorrection(
        measured_cps, dead_time_s, measured_cps / (1.0 - loss), loss, loss <= max_loss_fraction
    )


def _corrected(cps: float, dead_time_s: float) -> float:
    """The non-paralyzable correction of one bound; unbounded where ``m·τ ≥ 1``."""
    loss = cps * dead_time_s
    return math.inf if loss >= 1.0 else cps / (1.0 - loss)


@dataclass(frozen=True, slots=True)
class GeigerSummary:
    """One window of a Geiger stream: what the API and the dashboard show."""

    stats: WindowStats
    cpm: float | None
    dead_time: DeadTimeCorrection | None
    dose: DoseRate | None
    device_usv_per_hour: float | None
    rate: RateInterval | None
    dose_interval: tuple[float, float] | None


def summarise(
    readings: Iterable[tuple[datetime, float]],
    now: datetime,
    window: timedelta,
    *,
    tube: str | None = None,
    factor: float | None = None,
    overrides: Mapping[str, float] | None = None,
    device_usv_per_hour: Iterable[tuple[datetime, float]] = (),
    sample_seconds: float = 1.0,
    dead_time_s: float | None = None,
    confidence: float = 0.95,
) -> GeigerSummary:
    """Statistics, CPM, dose and the rate's exact interval for one window.

    Each CPS reading is taken to cover ``sample_seconds`` (1 s for LogExp and the fleet
    specification), so the window holds ``Σ cps · sample_seconds`` counts over ``count ·
    sample_seconds`` seconds: that is what the exact interval is computed from. With
    ``dead_time_s`` the mean rate is corrected before the dose is computed. The device's own
    µSv/h values in the same window are averaged next to ours.
    """
    stats = window_stats(readings, now, window)
    device = window_stats(device_usv_per_hour, now, window).mean
    if stats.mean is None:
        return GeigerSummary(stats, None, None, None, device, None, None)
    if not math.isfinite(sample_seconds) or sample_seconds <= 0:
        raise AnalyticsError(f"sample_seconds must be > 0, not {sample_seconds}")
    correction = None if dead_time_s is None else dead_time_correct(stats.mean, dead_time_s)
    mean = stats.mean if correction is None else correction.true_cps
    cpm = cpm_from_cps(mean)
    dose = dose_rate(cpm, tube=tube, factor=factor, overrides=overrides)
    seconds = stats.count * sample_seconds
    rate = rate_interval(stats.mean * seconds, seconds, confidence)
    dose_interval = None
    if dose is not None:
        per_cpm = dose.factor.usv_h_per_cpm
        low, high = rate.lower, rate.upper
        if dead_time_s is not None:  # the correction is monotonic: correct both ends
            low, high = _corrected(low, dead_time_s), _corrected(high, dead_time_s)
        dose_interval = (cpm_from_cps(low) * per_cpm, cpm_from_cps(high) * per_cpm)
    return GeigerSummary(stats, cpm, correction, dose, device, rate, dose_interval)
