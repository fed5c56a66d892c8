"""Room: fleet (pure; imports only ``protocol``). The rules of the fleet: node status, clock offsets.

Nothing here reads a clock or does I/O: time is always an argument.
"""

from .clock import ClockOffset, plausible_window, suspect_timestamp
from .status import node_status

__all__ = ["ClockOffset", "node_status", "plausible_window", "suspect_timestamp"]
