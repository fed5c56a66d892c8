"""Unit tests of ``fleet.instances``: the instance state machine, every (from, to) pair, and random
walks that may only ever move along allowed edges."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.fleet.errors import FleetError, TransitionRefused
from beamwarden.fleet.instances import NEXT, Transition, allowed, transition
from beamwarden.protocol import InstanceState

IDLE, START, WARM, ACTIVE, STOP, STOPPED = (
    InstanceState.IDLE,
    InstanceState.STARTING,
    InstanceState.WARMING,
    InstanceState.ACTIVE,
    InstanceState.STOPPING,
    InstanceState.STOPPED,
)
AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

#: the issue's edges, written out independently of the module's table
EDGES = {
    (IDLE, START),
    (START, WARM),
    (WARM, ACTIVE),
    (ACTIVE, STOP),
    (STOP, STOPPED),
    (STOPPED, IDLE),
    (START, STOP),
    (START, IDLE),
    (WARM, STOP),
    (WARM, IDLE),
}
ALL_PAIRS = list(itertools.product(InstanceState, repeat=2))


def test_the_table_is_the_issues_edges() -> None:
    assert {(a, b) for a, nexts in NEXT.items() for b in nexts} == EDGES
    assert set(NEXT) == set(InstanceState)


@pytest.mark.parametrize(("before", "after"), ALL_PAIRS, ids=[f"{a}-{b}" for a, b in ALL_PAIRS])
def test_every_pair(before: InstanceState, after: InstanceState) -> None:
    if (before, after) in EDGES:
        assert allowed(before, after)
        assert transition(before, after, AT) == Transition(before, after, AT)
    elif before == after:
        assert not allowed(before, after)
        assert transition(before, after, AT) is None
    else:
        assert not allowed(before, after)
        with pytest.raises(TransitionRefused) as refused:
            transition(before, after, AT)
        assert (refused.value.before, refused.value.after) == (before, after)
        assert refused.value.code == "invalid_transition"
        assert isinstance(refused.value, FleetError)
        assert str(refused.value) == f"instance state {before} → {after} is not allowed"


@pytest.mark.parametrize(
    ("before", "after"), [(IDLE, ACTIVE), (ACTIVE, WARM), (STOP, ACTIVE), (STOPPED, ACTIVE)]
)
def test_the_issues_refusals(before: InstanceState, after: InstanceState) -> None:
    with pytest.raises(TransitionRefused):
        transition(before, after, AT)


def test_a_full_cycle_is_six_ordered_transitions() -> None:
    states = [IDLE, START, WARM, ACTIVE, STOP, STOPPED, IDLE]
    steps = [
        transition(a, b, AT + timedelta(seconds=n))
        for n, (a, b) in enumerate(itertools.pairwise(states))
    ]
    assert steps == [
        Transition(IDLE, START, AT),
        Transition(START, WARM, AT + timedelta(seconds=1)),
        Transition(WARM, ACTIVE, AT + timedelta(seconds=2)),
        Transition(ACTIVE, STOP, AT + timedelta(seconds=3)),
        Transition(STOP, STOPPED, AT + timedelta(seconds=4)),
        Transition(STOPPED, IDLE, AT + timedelta(seconds=5)),
    ]


@pytest.mark.parametrize("state", list(InstanceState))
def test_a_new_instance_may_start_in_any_state(state: InstanceState) -> None:
    step = transition(None, state, AT)
    assert step == Transition(None, state, AT)
    assert step is not None
    assert not step.aborted_start
    assert step.describe() == f"new instance → {state}"


def test_a_failed_start_is_an_aborted_start_with_its_reason() -> None:
    step = transition(WARM, IDLE, AT, reason="serial port /dev/ttyUSB0 vanished")
    assert step == Transition(WARM, IDLE, AT, "serial port /dev/ttyUSB0 vanished")
    assert step.aborted_start
    assert step.describe() == "warming → idle (start aborted): serial port /dev/ttyUSB0 vanished"


def test_only_the_four_abort_edges_are_aborted_starts() -> None:
    aborted = {(a, b) for a, b in EDGES if Transition(a, b, AT).aborted_start}
    assert aborted == {(START, STOP), (START, IDLE), (WARM, STOP), (WARM, IDLE)}
    assert Transition(ACTIVE, STOP, AT).describe() == "active → stopping"


@given(st.lists(st.sampled_from(list(InstanceState)), max_size=60))
def test_random_reports_only_move_along_edges(reports: list[InstanceState]) -> None:
    state = IDLE
    history = [state]
    for wanted in reports:
        try:
            step = transition(state, wanted, AT)
        except TransitionRefused:
            assert (state, wanted) not in EDGES
            continue
        if step is None:
            assert wanted == state
            continue
        assert (step.before, step.after) == (state, wanted)
        assert (state, wanted) in EDGES
        state = step.after
        history.append(state)
    assert all(pair in EDGES for pair in itertools.pairwise(history))
