"""Room: fleet (pure; imports only ``protocol``). The rules of the fleet: node status, clock offsets,
the instance state machine, leases with fencing epochs, Geiger analytics, learned staleness and
alert evaluation (:mod:`.alerts`).

Nothing here reads a clock or does I/O: time is always an argument.
"""

from .clock import ClockOffset, plausible_window, suspect_timestamp
from .errors import FleetError, InvalidLease, LeaseHeld, StaleEpoch, TransitionRefused
from .geiger import (
    TUBE_FACTORS,
    GeigerSummary,
    TubeFactor,
    WindowStats,
    dead_time_correct,
    dose_rate,
    summarise,
    window_stats,
)
from .instances import Transition, transition
from .leases import (
    DEFAULT_INTERVAL,
    DEFAULT_TTL,
    Grant,
    Holder,
    Lease,
    LeaseRefusal,
    ttl_for_interval,
)
from .poisson import AnalyticsError, count_interval, rate_interval
from .staleness import StalenessPolicy, StreamCadence, StreamFreshness
from .status import node_status, status_at_age, status_limits_us

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_TTL",
    "TUBE_FACTORS",
    "AnalyticsError",
    "ClockOffset",
    "FleetError",
    "GeigerSummary",
    "Grant",
    "Holder",
    "InvalidLease",
    "Lease",
    "LeaseHeld",
    "LeaseRefusal",
    "StaleEpoch",
    "StalenessPolicy",
    "StreamCadence",
    "StreamFreshness",
    "Transition",
    "TransitionRefused",
    "TubeFactor",
    "WindowStats",
    "count_interval",
    "dead_time_correct",
    "dose_rate",
    "node_status",
    "plausible_window",
    "rate_interval",
    "status_at_age",
    "status_limits_us",
    "summarise",
    "suspect_timestamp",
    "transition",
    "ttl_for_interval",
    "window_stats",
]
