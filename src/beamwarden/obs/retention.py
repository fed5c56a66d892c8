"""Room: obs (stands alone, pure but for the store it is given). How long stored data lives.

Log records go when older than ``log_max_age`` seconds, or older than the age given for their
level in ``log_max_age_by_level`` (keep DEBUG an hour, ERROR a month), or beyond the newest
``log_max_count``; samples likewise by ``sample_max_age`` and ``sample_max_count``. ``None``
means no limit. The last-value table (one row per series) is never trimmed by retention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .levels import Level
from .store import ObsStore

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    log_max_age: float | None = 7 * DAY
    log_max_count: int | None = 1_000_000
    log_max_age_by_level: Mapping[Level, float] = field(default_factory=dict)
    sample_max_age: float | None = 7 * DAY
    sample_max_count: int | None = 1_000_000

    def __post_init__(self) -> None:
        ages = [self.log_max_age, self.sample_max_age, *self.log_max_age_by_level.values()]
        counts = [self.log_max_count, self.sample_max_count]
        if any(a is not None and a < 0 for a in ages) or any(
            c is not None and c < 0 for c in counts
        ):
            raise ValueError("retention ages and counts are >= 0")


@dataclass(frozen=True, slots=True)
class RetentionReport:
    logs_removed: int
    samples_removed: int


def apply_retention(store: ObsStore, policy: RetentionPolicy, now: float) -> RetentionReport:
    """Remove what ``policy`` no longer keeps at time ``now``."""
    logs = 0
    for level, age in sorted(policy.log_max_age_by_level.items()):
        logs += store.delete_logs(now - age, levels={level})
    if policy.log_max_age is not None:
        logs += store.delete_logs(now - policy.log_max_age)
    if policy.log_max_count is not None:
        logs += store.trim_logs(policy.log_max_count)
    samples = 0
    if policy.sample_max_age is not None:
        samples += store.delete_samples(now - policy.sample_max_age)
    if policy.sample_max_count is not None:
        samples += store.trim_samples(policy.sample_max_count)
    return RetentionReport(logs, samples)
