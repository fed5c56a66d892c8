"""Room: fleet (pure). Node clocks: estimating each node's offset, flagging suspect timestamps.

A Pi without a real-time clock boots in the past until NTP syncs. Each heartbeat gives one sample
``node_time - receive_time`` (the true offset minus the network delay, so samples err low by a few
milliseconds). The estimate is a moving average that restarts when the clock visibly steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: readings stamped before this are suspect (no node of ours ran before it)
EARLIEST_PLAUSIBLE = datetime(2020, 1, 1, tzinfo=UTC)
#: readings stamped further ahead of the receive time than this are suspect
MAX_AHEAD = timedelta(minutes=5)


def suspect_timestamp(timestamp: datetime, received_at: datetime) -> bool:
    """PROTOCOL.md: before 2020, or more than 5 minutes ahead of the receive time."""
    return timestamp < EARLIEST_PLAUSIBLE or timestamp - received_at > MAX_AHEAD


def plausible_window(received_at: datetime) -> tuple[datetime, datetime]:
    """The timestamps that are *not* suspect for this receive time: ``lo <= t <= hi``.

    The same rule as :func:`suspect_timestamp`, for checking a whole batch with two comparisons
    a reading."""
    return EARLIEST_PLAUSIBLE, received_at + MAX_AHEAD


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """A node's estimated clock offset in seconds (positive: the node's clock is ahead)."""

    seconds: float
    samples: int

    #: weight of a new sample in the moving average
    ALPHA = 0.2
    #: a sample this far from the estimate means the clock stepped (NTP sync): start again
    STEP_SECONDS = 2.0

    @classmethod
    def first(cls, node_time: datetime, received_at: datetime) -> ClockOffset:
        return cls((node_time - received_at).total_seconds(), 1)

    def update(self, node_time: datetime, received_at: datetime) -> ClockOffset:
        sample = (node_time - received_at).total_seconds()
        if abs(sample - self.seconds) > self.STEP_SECONDS:
            return ClockOffset(sample, 1)
        return ClockOffset(self.seconds + self.ALPHA * (sample - self.seconds), self.samples + 1)
