"""Room: fleet (pure). Alert evaluation: ``evaluate(rule, state, inputs, now) -> (state, transitions)``.

Each rule applies to every stream (or node) its scope selects; each of those is one alert
instance with its own :class:`SubjectState`. Per instance, one machine for every kind::

    ok ──condition──▶ pending ──held for `for`──▶ firing ──cleared──▶ ok
     ▲                   │ (condition gone)          │ (repeat passed, or a silence ended)
     └───────────────────┘                           └──▶ renotify

* The *condition* and *cleared* tests differ when a rule has hysteresis: fire above 85, clear
  below 80. A value between them changes nothing, so a flapping input fires once.
* Stream samples are taken one by one, in order, at their own timestamps (a flap inside one cycle
  is seen); node rules and ``stale`` look once, at ``now``.
* A silence or maintenance window does not stop the machine: transitions are still returned (the
  activity log records them) but marked ``silenced``; an alert that fired silenced notifies
  (``renotify``) at the first cycle after the silence ends, if it is still firing.
* With no ``repeat``, a firing alert notifies once. Between two notifying ``firing`` transitions
  of one instance there is always a ``resolved``.

Nothing here reads a clock: ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from .inputs import Inputs, NodeInput, StreamInput
from .rules import (
    STREAM_KINDS,
    BatteryLowRule,
    ClockSkewRule,
    MaintenanceWindow,
    NodeRule,
    NodeStatusRule,
    QueueBacklogRule,
    RateOfChangeRule,
    Silence,
    StaleRule,
    StreamRule,
    ThresholdRule,
)
from .state import AlertState, AlertStatus, SubjectState, Transition, TransitionKind

__all__ = ["evaluate", "evaluate_all"]

_OK, _PENDING, _FIRING = AlertStatus.OK, AlertStatus.PENDING, AlertStatus.FIRING
_AT_REST = SubjectState()


class _Instance:
    """One rule on one subject during one evaluation: emits the transitions."""

    __slots__ = ("field", "node_id", "out", "rule", "sensor_id", "silenced", "subject")

    def __init__(
        self,
        rule: StreamRule | NodeRule,
        subject: str,
        node_id: str,
        sensor_id: str | None,
        field: str | None,
        silenced: bool,
        out: list[Transition],
    ) -> None:
        self.rule = rule
        self.subject = subject
        self.node_id = node_id
        self.sensor_id = sensor_id
        self.field = field
        self.silenced = silenced
        self.out = out

    def emit(
        self,
        kind: TransitionKind,
        at: datetime,
        st: SubjectState,
        threshold: float | None,
        detail: str,
        silenced: bool,
    ) -> None:
        self.out.append(
            Transition(
                self.rule.name,
                kind,
                self.subject,
                self.node_id,
                at,
                self.rule.severity,
                st.value,
                threshold,
                st.since,
                silenced,
                self.sensor_id,
                self.field,
                detail,
                self.rule.notify,
            )
        )

    def step(
        self,
        st: SubjectState,
        at: datetime,
        value: float | None,
        active: bool,
        cleared: bool,
        threshold: float | None,
        detail: str = "",
        recent: tuple[float, ...] = (),
        history: tuple[tuple[datetime, float], ...] = (),
    ) -> SubjectState:
        """One observation at time ``at``."""
        if st.status is _FIRING:
            if cleared:
                # a resolve of an alert nobody was told about is not news either
                silenced = self.silenced or st.last_notified is None
                done = SubjectState(_FIRING, st.since, st.last_notified, value, recent, history)
                self.emit(TransitionKind.RESOLVED, at, done, threshold, detail, silenced)
                return SubjectState(_OK, None, None, value, recent, history)
            return SubjectState(_FIRING, st.since, st.last_notified, value, recent, history)
        if not active:
            return SubjectState(_OK, None, None, value, recent, history)
        since = st.since if st.status is _PENDING and st.since is not None else at
        if (at - since).total_seconds() >= self.rule.for_:
            return self._fire(at, value, threshold, detail, recent, history)
        return SubjectState(_PENDING, since, None, value, recent, history)

    def _fire(
        self,
        at: datetime,
        value: float | None,
        threshold: float | None,
        detail: str,
        recent: tuple[float, ...],
        history: tuple[tuple[datetime, float], ...],
    ) -> SubjectState:
        notified = None if self.silenced else at
        fired = SubjectState(_FIRING, at, notified, value, recent, history)
        self.emit(TransitionKind.FIRING, at, fired, threshold, detail, self.silenced)
        return fired

    def finish(
        self, st: SubjectState, now: datetime, threshold: float | None, detail: str = ""
    ) -> SubjectState:
        """At the end of the cycle: fire a pending alert whose ``for`` passed, renotify."""
        if st.status is _PENDING and st.since is not None:
            if (now - st.since).total_seconds() >= self.rule.for_:
                return self._fire(now, st.value, threshold, detail, st.recent, st.history)
            return st
        if st.status is not _FIRING or self.silenced:
            return st
        repeat = self.rule.repeat
        due = st.last_notified is None or (
            repeat is not None and (now - st.last_notified).total_seconds() >= repeat
        )
        if not due:
            return st
        self.emit(TransitionKind.RENOTIFY, now, st, threshold, detail, False)
        return SubjectState(_FIRING, st.since, now, st.value, st.recent, st.history)


# --- per kind -----------------------------------------------------------------------------------


def _levels(
    rule: ThresholdRule | BatteryLowRule,
    inst: _Instance,
    st: SubjectState,
    stream: StreamInput,
    now: datetime,
) -> SubjectState:
    threshold = rule.threshold
    n_of_m = rule.n_of_m if isinstance(rule, ThresholdRule) else None
    for at, value in stream.samples:
        if n_of_m is None:
            st = inst.step(st, at, value, rule.breaching(value), rule.clear(value), threshold)
            continue
        n, m = n_of_m
        recent = (*st.recent, value)[-m:]
        active = sum(1 for v in recent if rule.breaching(v)) >= n
        cleared = sum(1 for v in recent if not rule.clear(v)) < n
        detail = f"{n} of the last {m} samples"
        st = inst.step(st, at, value, active, cleared, threshold, detail, recent)
    return inst.finish(st, now, threshold)


def _rate(
    rule: RateOfChangeRule, inst: _Instance, st: SubjectState, stream: StreamInput, now: datetime
) -> SubjectState:
    threshold = rule.threshold
    detail = f"change per {rule.per:g} s"
    for at, value in stream.samples:
        if st.history and at <= st.history[-1][0]:
            continue  # out of order: the rate needs increasing times
        history = tuple(
            (t, v) for t, v in (*st.history, (at, value)) if (at - t).total_seconds() <= rule.window
        )
        first_at, first_value = history[0]
        if first_at == at:  # a single sample: no rate yet
            st = SubjectState(st.status, st.since, st.last_notified, st.value, (), history)
            continue
        rate = (value - first_value) / (at - first_at).total_seconds() * rule.per
        active, cleared = rule.breaching(rate), rule.clear(rate)
        st = inst.step(st, at, rate, active, cleared, threshold, detail, (), history)
    return inst.finish(st, now, threshold, detail)


def _stale(
    rule: StaleRule, inst: _Instance, st: SubjectState, stream: StreamInput, now: datetime
) -> SubjectState:
    if stream.last_seen is None:
        return st  # never seen: unknown, not stale
    if rule.after is not None:
        limit = rule.after
    else:
        limit = rule.factor * (stream.expected_interval_s or rule.default_interval)
    age = (now - stream.last_seen).total_seconds()
    detail = f"no reading for {age:.0f} s (limit {limit:.0f} s)"
    st = inst.step(st, now, age, age > limit, age <= limit, limit, detail)
    return inst.finish(st, now, limit, detail)


def _node_status(
    rule: NodeStatusRule, inst: _Instance, st: SubjectState, node: NodeInput, now: datetime
) -> SubjectState:
    active = node.status in rule.statuses
    detail = node.status.value
    st = inst.step(st, now, None, active, not active, None, detail)
    return inst.finish(st, now, None, detail)


def _node_level(
    rule: ClockSkewRule | QueueBacklogRule,
    inst: _Instance,
    st: SubjectState,
    node: NodeInput,
    now: datetime,
) -> SubjectState:
    if isinstance(rule, ClockSkewRule):
        value = None if node.clock_offset_s is None else abs(node.clock_offset_s)
        detail = "clock offset (s)"
    else:
        value = node.metrics.get(rule.metric)
        detail = rule.metric
    if value is None:
        return st  # not reported: nothing to judge
    threshold = rule.threshold
    st = inst.step(st, now, value, rule.breaching(value), rule.clear(value), threshold, detail)
    return inst.finish(st, now, threshold, detail)


# --- evaluation ---------------------------------------------------------------------------------


def _silencers(rule_name: str, inputs: Inputs, now: datetime) -> list[Silence | MaintenanceWindow]:
    held: list[Silence | MaintenanceWindow] = [
        s for s in inputs.silences if (not s.rules or rule_name in s.rules) and s.active(now)
    ]
    held.extend(
        m for m in inputs.maintenance if (not m.rules or rule_name in m.rules) and m.active(now)
    )
    return held


def _store(subjects: dict[str, SubjectState], key: str, st: SubjectState) -> None:
    if st.status is _OK and not st.recent and not st.history:
        subjects.pop(key, None)  # at rest: nothing worth keeping
    else:
        subjects[key] = st


def evaluate(
    rule: StreamRule | NodeRule, state: AlertState, inputs: Inputs, now: datetime
) -> tuple[AlertState, list[Transition]]:
    """One cycle of one rule: the new state and what changed, oldest first.

    ``state`` is this rule's state from the previous cycle (``AlertState()`` the first time).
    Subjects that are not in ``inputs`` this cycle keep their state untouched.
    """
    out: list[Transition] = []
    subjects = dict(state.subjects)
    silencers = _silencers(rule.name, inputs, now)
    if rule.kind in STREAM_KINDS:
        assert isinstance(rule, ThresholdRule | BatteryLowRule | RateOfChangeRule | StaleRule)
        for stream in inputs.streams_for(rule.scope, rule.field):
            key = stream.key
            silenced = any(stream.in_scope(s.scope) for s in silencers)
            node = stream.node
            inst = _Instance(rule, key, node.node_id, stream.sensor_id, stream.field, silenced, out)
            before = subjects.get(key, _AT_REST)
            if isinstance(rule, RateOfChangeRule):
                after = _rate(rule, inst, before, stream, now)
            elif isinstance(rule, StaleRule):
                after = _stale(rule, inst, before, stream, now)
            else:
                after = _levels(rule, inst, before, stream, now)
            if after is not before:
                _store(subjects, key, after)
    else:
        assert isinstance(rule, NodeStatusRule | ClockSkewRule | QueueBacklogRule)
        for node_input in inputs.nodes_for(rule.scope):
            key = node_input.key
            silenced = any(node_input.in_scope(s.scope) for s in silencers)
            inst = _Instance(rule, key, key, None, None, silenced, out)
            before = subjects.get(key, _AT_REST)
            if isinstance(rule, NodeStatusRule):
                after = _node_status(rule, inst, before, node_input, now)
            else:
                after = _node_level(rule, inst, before, node_input, now)
            if after is not before:
                _store(subjects, key, after)
    return AlertState(subjects), out


def evaluate_all(
    rules: Iterable[StreamRule | NodeRule],
    states: Mapping[str, AlertState],
    inputs: Inputs,
    now: datetime,
) -> tuple[dict[str, AlertState], list[Transition]]:
    """One cycle of every rule; states are keyed by rule name (a new rule starts at rest)."""
    new_states: dict[str, AlertState] = {}
    transitions: list[Transition] = []
    for rule in rules:
        new_states[rule.name], out = evaluate(
            rule, states.get(rule.name, AlertState()), inputs, now
        )
        transitions.extend(out)
    return new_states, transitions
