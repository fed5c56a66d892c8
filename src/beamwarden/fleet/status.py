"""Room: fleet (pure). A node's status from the age of its last heartbeat, on the server's clock,
and its status history from the times of its heartbeats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class StatusSpan:
    """``[start, end)`` during which the node had ``status``."""

    start: datetime
    end: datetime
    status: NodeStatus


def status_history(
    heartbeats: Sequence[datetime],
    interval_seconds: float,
    since: datetime,
    until: datetime,
    before: datetime | None = None,
) -> list[StatusSpan]:
    """The node's status over ``[since, until)`` from its heartbeat times (the same thresholds as
    :func:`node_status` at every instant), as spans oldest first, neighbours of one status merged.

    ``heartbeats`` are the receive times in the range (any order); ``before`` is the last one
    before ``since``, if any. Before the first known heartbeat the status is ``unknown``.
    """
    if since >= until:
        return []
    interval = timedelta(seconds=interval_seconds)
    times = sorted(t for t in heartbeats if since <= t < until)
    if before is not None and before < since:
        times.insert(0, before)
    spans: list[StatusSpan] = []

    def add(start: datetime, end: datetime, status: NodeStatus) -> None:
        start, end = max(start, since), min(end, until)
        if start >= end:
            return
        if spans and spans[-1].status is status and spans[-1].end == start:
            spans[-1] = StatusSpan(spans[-1].start, end, status)
        else:
            spans.append(StatusSpan(start, end, status))

    add(since, times[0] if times else until, NodeStatus.UNKNOWN)
    for index, beat in enumerate(times):
        following = times[index + 1] if index + 1 < len(times) else until
        online_end = beat + ONLINE_INTERVALS * interval
        degraded_end = beat + DEGRADED_INTERVALS * interval
        add(beat, min(following, online_end), NodeStatus.ONLINE)
        add(online_end, min(following, degraded_end), NodeStatus.DEGRADED)
        add(degraded_end, following, NodeStatus.OFFLINE)
    return spans
