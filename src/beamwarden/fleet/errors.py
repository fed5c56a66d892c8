"""Room: fleet (pure). The exceptions of the fleet rules; no I/O, imports only ``protocol``.

Exception tree::

    FleetError                base of everything this room raises
    ├── TransitionRefused     an instance state change the state machine does not allow
    ├── LeaseHeld             a lease is held by another holder (carries the holder's details)
    ├── StaleEpoch            a write carries a fencing epoch that is no longer the live grant's
    └── InvalidLease          a lease request that can never be granted (e.g. a TTL ≤ 0)

The lease functions of :mod:`beamwarden.fleet.leases` *return* refusals (a refusal is an expected
answer, 49 out of 50 concurrent claims get one); :class:`LeaseHeld` is for callers that want to
raise one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from beamwarden.protocol import InstanceState

if TYPE_CHECKING:
    from beamwarden.fleet.leases import LeaseRefusal


class FleetError(Exception):
    """Base of every error of the fleet room. ``code`` is a snake_case code for the envelope."""

    code = "fleet_error"


class TransitionRefused(FleetError):
    """``before → after`` is not an edge of the instance state machine; nothing changed."""

    code = "invalid_transition"

    def __init__(self, before: InstanceState, after: InstanceState):
        super().__init__(f"instance state {before} → {after} is not allowed")
        self.before = before
        self.after = after


class LeaseHeld(FleetError):
    """Another holder holds the lease; ``refusal`` names it (host, IP, since when, time left)."""

    code = "lease_held"

    def __init__(self, refusal: LeaseRefusal):
        super().__init__(refusal.message)
        self.refusal = refusal


class StaleEpoch(FleetError):
    """A write fenced with ``epoch`` on lease ``name``, which no live grant carries any more."""

    code = "stale_epoch"

    def __init__(self, name: str, epoch: int):
        super().__init__(f"epoch {epoch} of lease {name!r} is stale: the lease was lost")
        self.name = name
        self.epoch = epoch


class InvalidLease(FleetError):
    """A lease request that no state of the lease could grant."""

    code = "invalid_lease"
