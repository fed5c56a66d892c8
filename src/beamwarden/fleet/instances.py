"""Room: fleet (pure; imports only ``protocol``). The instance state machine of an agent process.

::

    idle ──▶ starting ──▶ warming ──▶ active ──▶ stopping ──▶ stopped ──▶ idle
               │   │        │   │                   ▲
               │   └────────┼───┼───────────────────┘   aborted start: → stopping
               └────────────┴───┴──▶ idle                aborted start: → idle

Every other change is refused with :class:`~beamwarden.fleet.errors.TransitionRefused` and changes
nothing. Reporting the state an instance is already in is not a change (heartbeats repeat it):
:func:`transition` returns ``None`` for it, and there is nothing to log.

An instance's *first* report (``before is None``: a new ``instance_id``) is accepted in any state:
the server cannot know what the process did before it was heard, e.g. across a server restart.

Time is an argument: the returned :class:`Transition` carries ``at`` so the caller can log it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from beamwarden.fleet.errors import TransitionRefused
from beamwarden.protocol import InstanceState

_I, _S, _W, _A, _P, _T = (
    InstanceState.IDLE,
    InstanceState.STARTING,
    InstanceState.WARMING,
    InstanceState.ACTIVE,
    InstanceState.STOPPING,
    InstanceState.STOPPED,
)

#: The edges of the state machine: ``state → the states it may move to``.
NEXT: dict[InstanceState, frozenset[InstanceState]] = {
    _I: frozenset({_S}),
    _S: frozenset({_W, _P, _I}),
    _W: frozenset({_A, _P, _I}),
    _A: frozenset({_P}),
    _P: frozenset({_T}),
    _T: frozenset({_I}),
}

#: Edges that end a start before the instance became active (a failed or cancelled start).
ABORTS: frozenset[tuple[InstanceState, InstanceState]] = frozenset(
    {(_S, _P), (_S, _I), (_W, _P), (_W, _I)}
)


@dataclass(frozen=True, slots=True)
class Transition:
    """One allowed state change, with what the activity log needs to record it."""

    before: InstanceState | None
    after: InstanceState
    at: datetime
    reason: str | None = None

    @property
    def aborted_start(self) -> bool:
        """Whether this change ends a start that never reached ``active``."""
        return self.before is not None and (self.before, self.after) in ABORTS

    def describe(self) -> str:
        start = "new instance" if self.before is None else self.before.value
        text = f"{start} → {self.after.value}"
        if self.aborted_start:
            text += " (start aborted)"
        return f"{text}: {self.reason}" if self.reason else text


def allowed(before: InstanceState, after: InstanceState) -> bool:
    """Whether ``before → after`` is an edge of the machine (a repeated state is not an edge)."""
    return after in NEXT[before]


def transition(
    before: InstanceState | None,
    after: InstanceState,
    at: datetime,
    reason: str | None = None,
) -> Transition | None:
    """The change from ``before`` to ``after`` at time ``at``.

    Returns ``None`` when the state does not change, a :class:`Transition` for an allowed edge
    (or an instance's first report), and raises :class:`TransitionRefused` otherwise.
    ``reason`` is kept for the log, e.g. the error that made a start fail.
    """
    if before is None:
        return Transition(None, after, at, reason)
    if before == after:
        return None
    if not allowed(before, after):
        raise TransitionRefused(before, after)
    return Transition(before, after, at, reason)
