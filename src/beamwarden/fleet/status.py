"""Room: fleet (pure). A node's status from the age of its last heartbeat, on the server's clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from beamwarden.protocol import NodeStatus

#: a node is online while its last heartbeat is at most this many intervals old …
ONLINE_INTERVALS = 2
#: … and degraded up to this many; offline after.
DEGRADED_INTERVALS = 5


def node_status(
    last_heartbeat: datetime | None, interval_seconds: float, now: datetime
) -> NodeStatus:
    """``online`` if age ≤ 2i, ``degraded`` if ≤ 5i, ``offline`` otherwise, ``unknown`` before any.

    A heartbeat "from the future" (the server's clock stepped back) counts as age 0.

    The comparison is exact, in whole microseconds (``timedelta`` arithmetic): in floating point
    ``5 * 1.005`` is ``5.0249999999999995``, which would call a node offline at exactly ``5i``.
    """
    if last_heartbeat is None:
        return NodeStatus.UNKNOWN
    age = now - last_heartbeat
    interval = timedelta(seconds=interval_seconds)
    if age <= ONLINE_INTERVALS * interval:
        return NodeStatus.ONLINE
    if age <= DEGRADED_INTERVALS * interval:
        return NodeStatus.DEGRADED
    return NodeStatus.OFFLINE
