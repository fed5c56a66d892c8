"""Unit tests of ``fleet.status.status_history``: a node's status over a range from its heartbeat
times, checked by hand on small cases and against ``node_status`` at every sampled instant."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from beamwarden.fleet import node_status
from beamwarden.fleet.status import StatusSpan, status_history
from beamwarden.protocol import NodeStatus

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ONLINE, DEGRADED, OFFLINE, UNKNOWN = (
    NodeStatus.ONLINE,
    NodeStatus.DEGRADED,
    NodeStatus.OFFLINE,
    NodeStatus.UNKNOWN,
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_steady_heartbeats_are_one_online_span() -> None:
    beats = [at(s) for s in range(0, 100, 10)]
    assert status_history(beats, 10, at(0), at(100)) == [StatusSpan(at(0), at(100), ONLINE)]


def test_a_gap_degrades_then_goes_offline_until_the_next_heartbeat() -> None:
    beats = [at(0), at(10), at(100)]
    assert status_history(beats, 10, at(0), at(110)) == [
        StatusSpan(at(0), at(30), ONLINE),
        StatusSpan(at(30), at(60), DEGRADED),
        StatusSpan(at(60), at(100), OFFLINE),
        StatusSpan(at(100), at(110), ONLINE),
    ]


def test_unknown_before_the_first_heartbeat_unless_one_came_before() -> None:
    assert status_history([at(50)], 10, at(0), at(60)) == [
        StatusSpan(at(0), at(50), UNKNOWN),
        StatusSpan(at(50), at(60), ONLINE),
    ]
    assert status_history([at(50)], 10, at(0), at(60), before=at(-15)) == [
        StatusSpan(at(0), at(5), ONLINE),
        StatusSpan(at(5), at(35), DEGRADED),
        StatusSpan(at(35), at(50), OFFLINE),
        StatusSpan(at(50), at(60), ONLINE),
    ]
    assert status_history([], 10, at(0), at(60)) == [StatusSpan(at(0), at(60), UNKNOWN)]
    assert status_history([at(1)], 10, at(5), at(5)) == []


@given(
    st.lists(st.integers(0, 600), max_size=30),
    st.integers(1, 60),
    st.one_of(st.none(), st.integers(-300, -1)),
    st.integers(0, 599),
)
def test_every_instant_has_the_status_node_status_gives(
    offsets: list[int], interval: int, before: int | None, probe: int
) -> None:
    beats = [at(s) for s in offsets]
    spans = status_history(beats, interval, at(0), at(600), None if before is None else at(before))
    assert spans[0].start == at(0)
    assert spans[-1].end == at(600)
    for left, right in itertools.pairwise(spans):
        assert left.end == right.start
        assert left.status is not right.status
    now = at(probe + 0.5)  # between the whole seconds where statuses change (spans are [a, b))
    known = [b for b in beats if b <= now] + ([at(before)] if before is not None else [])
    expected = node_status(max(known) if known else None, interval, now)
    (span,) = [s for s in spans if s.start <= now < s.end]
    assert span.status is expected
