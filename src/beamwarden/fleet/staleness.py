"""Room: fleet (pure; stdlib only). Staleness learned per stream from its own cadence.

A fixed "stale after 5 minutes" calls a sensor that reports every 10 minutes stale half of the
time. Instead each stream keeps a small :class:`StreamCadence`: the time it was last seen and its
last N gaps between readings. Its expected interval is the **median** of those gaps (one lost
reading or a burst does not move it), and it is stale when nothing arrived for ``stale_factor``
expected intervals.

Gaps longer than ``outage_factor`` × the expected interval are outages, not cadence, and are not
learned — unless ``adopt_after`` of them come in a row: then the sensor really reports more slowly
now (a new configuration), and the long gaps become its cadence. Readings older than the last
one seen (out of order, a late batch) do not move anything.

The state is a frozen value, updated by returning a new one; ``to_dict`` / ``from_dict`` make it
plain data for a store. Nothing here reads a clock: every time is an argument.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = ["StalenessPolicy", "StreamCadence", "StreamFreshness"]


class StreamFreshness(StrEnum):
    """Whether a stream's data is current."""

    FRESH = "fresh"
    STALE = "stale"
    UNKNOWN = "unknown"  # never seen


@dataclass(frozen=True, slots=True)
class StalenessPolicy:
    """How cadence is learned and judged; every field has a safe default."""

    #: gaps kept per stream (the median is taken over these)
    history: int = 16
    #: gaps needed before the learned interval is trusted over ``default_interval_s``
    min_gaps: int = 3
    #: a gap longer than this many expected intervals is an outage, not cadence
    outage_factor: float = 5.0
    #: this many outage-long gaps in a row are the new cadence
    adopt_after: int = 3
    #: stale after this many expected intervals without a reading
    stale_factor: float = 3.0
    #: the expected interval before enough gaps are known, in seconds
    default_interval_s: float = 60.0
    #: never call a stream stale sooner than this, in seconds (guards sub-second streams)
    min_stale_after_s: float = 1.0


DEFAULT_POLICY = StalenessPolicy()


@dataclass(frozen=True, slots=True)
class StreamCadence:
    """What one stream's staleness needs: when it was last seen and its recent gaps."""

    last_seen: datetime | None = None
    gaps: tuple[float, ...] = ()  # seconds, oldest first
    long_gaps: tuple[float, ...] = ()  # the outage-long gaps seen in a row

    def expected_interval(self, policy: StalenessPolicy = DEFAULT_POLICY) -> float:
        """The learned interval in seconds (the median gap), or the policy's default."""
        if len(self.gaps) < policy.min_gaps:
            return policy.default_interval_s
        return float(statistics.median(self.gaps))

    def observe(
        self, timestamp: datetime, policy: StalenessPolicy = DEFAULT_POLICY
    ) -> StreamCadence:
        """The state after a reading stamped ``timestamp``."""
        if self.last_seen is None:
            return StreamCadence(timestamp, self.gaps, self.long_gaps)
        gap = (timestamp - self.last_seen).total_seconds()
        if gap <= 0:  # out of order or a duplicate: nothing learned, nothing moves back
            return self
        learned = len(self.gaps) >= policy.min_gaps
        if learned and gap > policy.outage_factor * self.expected_interval(policy):
            long_gaps = (*self.long_gaps, gap)
            if len(long_gaps) < policy.adopt_after:
                return StreamCadence(timestamp, self.gaps, long_gaps)
            return StreamCadence(timestamp, long_gaps[-policy.history :], ())
        return StreamCadence(timestamp, (*self.gaps, gap)[-policy.history :], ())

    def stale_after(self, policy: StalenessPolicy = DEFAULT_POLICY) -> timedelta:
        """How long after the last reading the stream becomes stale."""
        seconds = policy.stale_factor * self.expected_interval(policy)
        return timedelta(seconds=max(seconds, policy.min_stale_after_s))

    def status(self, now: datetime, policy: StalenessPolicy = DEFAULT_POLICY) -> StreamFreshness:
        """``fresh``, ``stale`` (nothing for ``stale_factor`` intervals) or ``unknown``."""
        if self.last_seen is None:
            return StreamFreshness.UNKNOWN
        if now - self.last_seen > self.stale_after(policy):
            return StreamFreshness.STALE
        return StreamFreshness.FRESH

    def is_stale(self, now: datetime, policy: StalenessPolicy = DEFAULT_POLICY) -> bool:
        return self.status(now, policy) is StreamFreshness.STALE

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for a store."""
        return {
            "last_seen": None if self.last_seen is None else self.last_seen.isoformat(),
            "gaps": list(self.gaps),
            "long_gaps": list(self.long_gaps),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamCadence:
        last_seen = data.get("last_seen")
        return cls(
            None if last_seen is None else datetime.fromisoformat(last_seen),
            tuple(float(g) for g in data.get("gaps", ())),
            tuple(float(g) for g in data.get("long_gaps", ())),
        )
