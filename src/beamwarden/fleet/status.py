"""Room: fleet (pure). A node's status from the age of its last heartbeat, on the server's clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from beamwarden.protocol import NodeStatus

#: a node is online while its last heartbeat is at most this many intervals old …
ONLINE_INTERVALS = 2
#: … and degraded up to this many; offline after.
DEGRADED_INTERVALS = 5

_US = timedelta(microseconds=1)
# looked up once: an enum member through its class costs ~100 ns, a listing does it 10 000 times
_ONLINE, _DEGRADED, _OFFLINE = NodeStatus.ONLINE, NodeStatus.DEGRADED, NodeStatus.OFFLINE


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
    return status_at_age((now - last_heartbeat) // _US, status_limits_us(interval_seconds))


def status_limits_us(interval_seconds: float) -> tuple[int, int]:
    """The largest heartbeat ages (µs) that are still ``online`` and still ``degraded`` for a node
    reporting every ``interval_seconds`` (the interval rounded to whole µs as ``timedelta``
    rounds it). A listing of many nodes computes these once per distinct interval."""
    interval_us = timedelta(seconds=interval_seconds) // _US
    return ONLINE_INTERVALS * interval_us, DEGRADED_INTERVALS * interval_us


def status_at_age(age_us: int, limits_us: tuple[int, int]) -> NodeStatus:
    """The status of a node whose last heartbeat is ``age_us`` old (negative: from the future),
    given its :func:`status_limits_us`; the rule of :func:`node_status`, on integers."""
    if age_us <= limits_us[0]:
        return _ONLINE
    if age_us <= limits_us[1]:
        return _DEGRADED
    return _OFFLINE
