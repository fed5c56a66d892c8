"""Unit tests of ``fleet.alerts.engine``: every rule kind, hysteresis, pending, silences, repeat.

The issue's check: a value crossing the threshold every sample for 10 minutes yields exactly one
firing transition when hysteresis is configured. Time is an argument everywhere (``T0`` + n s).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamwarden.fleet.alerts import (
    AlertState,
    AlertStatus,
    Inputs,
    MaintenanceWindow,
    NodeInfo,
    NodeInput,
    NodeRule,
    Silence,
    StreamInput,
    StreamRule,
    SubjectState,
    Transition,
    TransitionKind,
    evaluate,
    evaluate_all,
    parse_rules,
)
from beamwarden.protocol import NodeStatus

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NODE = NodeInfo("pi-attic", role="pi-log", site="home", room="attic")
OTHER = NodeInfo("pi-cellar", role="pi-log", site="home", room="cellar")
KEY = "pi-attic/bme280@0x76/temperature_c"
FIRING, RESOLVED, RENOTIFY = TransitionKind.FIRING, TransitionKind.RESOLVED, TransitionKind.RENOTIFY


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rule(**fields: Any) -> StreamRule | NodeRule:
    fields.setdefault("name", "r")
    return parse_rules({"rules": [fields]}).rules[0]


def warm(**extra: Any) -> StreamRule | NodeRule:
    return rule(kind="threshold", field="temperature_c", above=85, **extra)


def stream(
    samples: Sequence[tuple[float, float]] = (),
    node: NodeInfo = NODE,
    field: str = "temperature_c",
    **extra: Any,
) -> StreamInput:
    return StreamInput(
        node,
        "bme280@0x76",
        "climate",
        field,
        tuple((at(s), v) for s, v in samples),
        **extra,
    )


def run(
    r: StreamRule | NodeRule,
    cycles: Sequence[tuple[float, Inputs]],
    state: AlertState | None = None,
) -> tuple[AlertState, list[Transition]]:
    state = state or AlertState()
    out: list[Transition] = []
    for now, inputs in cycles:
        state, transitions = evaluate(r, state, inputs, at(now))
        out.extend(transitions)
    return state, out


def kinds(transitions: Sequence[Transition]) -> list[tuple[TransitionKind, datetime]]:
    return [(t.kind, t.at) for t in transitions]


# --- the check: flapping --------------------------------------------------------------


def flapping(seconds: int = 600, step: int = 10) -> list[tuple[float, float]]:
    return [(s, 86.0 if (s // step) % 2 == 0 else 84.0) for s in range(0, seconds + 1, step)]


def test_flapping_with_hysteresis_fires_exactly_once_in_one_cycle() -> None:
    state, out = run(warm(clear_below=80), [(600, Inputs([stream(flapping())]))])
    assert kinds(out) == [(FIRING, T0)]
    assert state.get(KEY).status is AlertStatus.FIRING


def test_flapping_with_hysteresis_fires_exactly_once_over_sixty_cycles() -> None:
    cycles = [(s, Inputs([stream([(s, v)])])) for s, v in flapping()]
    _, out = run(warm(clear_below=80), cycles)
    assert kinds(out) == [(FIRING, T0)]


def test_flapping_without_hysteresis_fires_at_every_crossing() -> None:
    _, out = run(warm(), [(600, Inputs([stream(flapping())]))])
    assert [t.kind for t in out].count(FIRING) == 31  # what hysteresis is for


def test_firing_transition_carries_what_a_template_needs() -> None:
    _, out = run(warm(clear_below=80, severity="critical"), [(5, Inputs([stream([(0, 90)])]))])
    assert out == [
        Transition(
            rule="r",
            kind=FIRING,
            subject=KEY,
            node_id="pi-attic",
            at=T0,
            severity="critical",
            value=90.0,
            threshold=85.0,
            since=T0,
            silenced=False,
            sensor_id="bme280@0x76",
            field="temperature_c",
        )
    ]


def test_resolves_only_below_the_clearing_line() -> None:
    samples = [(0, 90), (10, 82), (20, 80), (30, 79.9), (40, 84)]
    _, out = run(warm(clear_below=80), [(40, Inputs([stream(samples)]))])
    assert kinds(out) == [(FIRING, at(0)), (RESOLVED, at(30))]
    assert out[1].value == 79.9
    assert out[1].since == at(0)


def test_below_direction() -> None:
    r = rule(kind="threshold", field="temperature_c", below=5, clear_above=7)
    _, out = run(r, [(40, Inputs([stream([(0, 6), (10, 4), (20, 6.5), (30, 7.5)])]))])
    assert kinds(out) == [(FIRING, at(10)), (RESOLVED, at(30))]


# --- pending ------------------------------------------------------------------------------------


def test_pending_fires_after_the_duration_held() -> None:
    samples = [(s, 90) for s in range(0, 301, 60)]
    _, out = run(warm(**{"for": "5m"}), [(300, Inputs([stream(samples)]))])
    assert kinds(out) == [(FIRING, at(300))]


def test_pending_resets_when_the_condition_goes() -> None:
    samples = [(0, 90), (120, 70), (180, 90), (400, 90)]
    state, out = run(warm(**{"for": "5m"}), [(400, Inputs([stream(samples)]))])
    assert out == []
    assert state.get(KEY) == SubjectState(AlertStatus.PENDING, at(180), None, 90.0)


def test_pending_fires_at_a_later_cycle_without_new_samples() -> None:
    r = warm(**{"for": "5m"})
    cycles = [
        (0, Inputs([stream([(0, 90)])])),
        (200, Inputs([stream()])),
        (301, Inputs([stream()])),
    ]
    _, out = run(r, cycles)
    assert kinds(out) == [(FIRING, at(301))]
    assert out[0].value == 90


# --- N of M -------------------------------------------------------------------------------------


def test_n_of_m() -> None:
    r = rule(kind="threshold", field="cpm", above=100, clear_below=90, n_of_m=[3, 5])
    values = [120, 50, 130, 40, 140, 95, 95, 95, 80, 80, 80]
    samples = [(i, v) for i, v in enumerate(values)]
    _, out = run(r, [(20, Inputs([stream(samples, field="cpm")]))])
    # fires at the 3rd breach within 5 samples (index 4), resolves when < 3 of the last 5 are ≥ 90
    assert kinds(out) == [(FIRING, at(4)), (RESOLVED, at(10))]
    assert out[0].detail == "3 of the last 5 samples"


def test_n_of_m_window_is_kept_between_cycles() -> None:
    r = rule(kind="threshold", field="cpm", above=100, n_of_m=[2, 3])
    cycles = [(i, Inputs([stream([(i, v)], field="cpm")])) for i, v in enumerate([120, 10, 130])]
    state, out = run(r, cycles)
    assert kinds(out) == [(FIRING, at(2))]
    assert state.get("pi-attic/bme280@0x76/cpm").recent == (120.0, 10.0, 130.0)


# --- rate of change -----------------------------------------------------------------------------


def test_rate_of_change() -> None:
    r = rule(kind="rate_of_change", field="temperature_c", above=2.0, clear_below=1.0, window="2m")
    # +0.5 °C/min, then +3 °C/min, then flat
    samples = [(0, 20.0), (60, 20.5), (120, 21.0), (180, 24.0), (240, 27.0), (300, 27.0)]
    samples += [(s, 27.0) for s in range(360, 1000, 60)]
    _, out = run(r, [(1000, Inputs([stream(samples)]))])
    # over the 2 minutes up to 240 s: (27 − 21) °C / 2 min; flat again over [240 s, 360 s]
    assert kinds(out) == [(FIRING, at(240)), (RESOLVED, at(360))]
    assert out[0].value == pytest.approx(3.0)
    assert out[0].detail == "change per 60 s"


def test_rate_needs_two_samples_and_ignores_out_of_order() -> None:
    r = rule(kind="rate_of_change", field="temperature_c", below=-1.0)
    state, out = run(r, [(0, Inputs([stream([(0, 20.0)])]))])
    assert out == []
    assert state.get(KEY).history == ((T0, 20.0),)
    state, out = run(r, [(100, Inputs([stream([(60, 18.0), (30, 50.0)])]))], state)
    assert kinds(out) == [(FIRING, at(60))]
    assert state.get(KEY).history == ((T0, 20.0), (at(60), 18.0))


# --- stale --------------------------------------------------------------------------------------


def test_stale_uses_the_learned_interval() -> None:
    r = rule(kind="stale")
    ten_minutes = stream(last_seen=T0, expected_interval_s=600)
    _, out = run(r, [(300, Inputs([ten_minutes])), (1800, Inputs([ten_minutes]))])
    assert out == []
    _, out = run(r, [(1801, Inputs([ten_minutes]))])
    assert kinds(out) == [(FIRING, at(1801))]
    assert (out[0].value, out[0].threshold) == (1801.0, 1800.0)
    assert out[0].detail == "no reading for 1801 s (limit 1800 s)"


def test_stale_resolves_when_data_comes_back_and_ignores_never_seen() -> None:
    r = rule(kind="stale", after="2m", field="temperature_c")
    state, out = run(r, [(200, Inputs([stream(last_seen=T0)]))])
    assert kinds(out) == [(FIRING, at(200))]
    state, out = run(r, [(210, Inputs([stream(last_seen=at(205))]))], state)
    assert kinds(out) == [(RESOLVED, at(210))]
    state, out = run(r, [(500, Inputs([stream()]))], state)
    assert out == []
    assert state == AlertState()


def test_stale_default_interval_when_nothing_is_learned() -> None:
    r = rule(kind="stale")
    _, out = run(r, [(181, Inputs([stream(last_seen=T0)]))])
    assert out[0].threshold == 180.0


# --- node rules ---------------------------------------------------------------------------------


def node(status: NodeStatus = NodeStatus.ONLINE, info: NodeInfo = NODE, **extra: Any) -> NodeInput:
    return NodeInput(info, status, **extra)


def test_node_offline_and_back() -> None:
    r = rule(kind="node_status")
    cycles = [
        (0, Inputs(nodes=[node(NodeStatus.DEGRADED)])),
        (60, Inputs(nodes=[node(NodeStatus.OFFLINE)])),
        (120, Inputs(nodes=[node(NodeStatus.OFFLINE)])),
        (180, Inputs(nodes=[node(NodeStatus.ONLINE)])),
    ]
    _, out = run(r, cycles)
    assert kinds(out) == [(FIRING, at(60)), (RESOLVED, at(180))]
    assert (out[0].subject, out[0].detail, out[0].value) == ("pi-attic", "offline", None)
    assert out[1].detail == "online"


def test_node_degraded_counts_when_asked() -> None:
    r = rule(kind="node_status", statuses=["degraded", "offline"])
    _, out = run(r, [(0, Inputs(nodes=[node(NodeStatus.DEGRADED)]))])
    assert kinds(out) == [(FIRING, T0)]


def test_battery_low() -> None:
    r = rule(kind="battery_low", clear_above=25)
    samples = [(0, 30), (10, 19), (20, 22), (30, 26)]
    _, out = run(r, [(30, Inputs([stream(samples, field="battery_pct")]))])
    assert kinds(out) == [(FIRING, at(10)), (RESOLVED, at(30))]
    assert out[0].threshold == 20


def test_clock_skew_either_way() -> None:
    r = rule(kind="clock_skew", above=5, clear_below=2)
    cycles = [
        (0, Inputs(nodes=[node(clock_offset_s=1.0)])),
        (10, Inputs(nodes=[node(clock_offset_s=-7.5)])),
        (20, Inputs(nodes=[node(clock_offset_s=None)])),
        (30, Inputs(nodes=[node(clock_offset_s=3.0)])),
        (40, Inputs(nodes=[node(clock_offset_s=0.5)])),
    ]
    _, out = run(r, cycles)
    assert kinds(out) == [(FIRING, at(10)), (RESOLVED, at(40))]
    assert out[0].value == 7.5


def test_queue_backlog() -> None:
    r = rule(kind="queue_backlog", above=1000, clear_below=100)
    cycles = [
        (0, Inputs(nodes=[node(metrics={})])),
        (10, Inputs(nodes=[node(metrics={"queue_depth": 5000})])),
        (20, Inputs(nodes=[node(metrics={"queue_depth": 500})])),
        (30, Inputs(nodes=[node(metrics={"queue_depth": 50})])),
    ]
    _, out = run(r, cycles)
    assert kinds(out) == [(FIRING, at(10)), (RESOLVED, at(30))]
    assert out[0].detail == "queue_depth"


# --- scope --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "fired"),
    [
        ({}, {"pi-attic", "pi-cellar"}),
        ({"node": "pi-cellar"}, {"pi-cellar"}),
        ({"node": ["pi-cellar", "nobody"]}, {"pi-cellar"}),
        ({"room": "attic"}, {"pi-attic"}),
        ({"site": "home", "room": ["attic", "cellar"]}, {"pi-attic", "pi-cellar"}),
        ({"role": "mqtt-bridge"}, set()),
        ({"sensor_type": "climate"}, {"pi-attic", "pi-cellar"}),
        ({"sensor_type": "geiger"}, set()),
        ({"sensor_id": "bme280@0x76", "node": "pi-attic"}, {"pi-attic"}),
    ],
)
def test_stream_scope(scope: dict[str, Any], fired: set[str]) -> None:
    streams = [stream([(0, 90)]), stream([(0, 90)], node=OTHER), stream([(0, 90)], field="x")]
    _, out = run(warm(scope=scope), [(0, Inputs(streams))])
    assert {t.node_id for t in out} == fired


def test_a_sensor_in_another_room_than_its_gateway() -> None:
    ble = stream([(0, 90)], node=OTHER, room="attic")
    _, out = run(warm(scope={"room": "attic"}), [(0, Inputs([ble]))])
    assert [t.node_id for t in out] == ["pi-cellar"]


@pytest.mark.parametrize(
    ("scope", "fired"),
    [
        ({}, {"pi-attic", "pi-cellar"}),
        ({"node": "pi-attic"}, {"pi-attic"}),
        ({"room": "cellar"}, {"pi-cellar"}),
    ],
)
def test_node_scope(scope: dict[str, Any], fired: set[str]) -> None:
    nodes = [node(NodeStatus.OFFLINE), node(NodeStatus.OFFLINE, OTHER)]
    _, out = run(rule(kind="node_status", scope=scope), [(0, Inputs(nodes=nodes))])
    assert {t.node_id for t in out} == fired


# --- silences, maintenance, repeat --------------------------------------------------------------


def silence(start: float, end: float, **extra: Any) -> Silence:
    return Silence(starts=at(start), ends=at(end), **extra)


def test_silenced_firing_is_logged_then_notified_when_the_silence_ends() -> None:
    quiet = [silence(0, 100, rules=("r",))]
    cycles = [
        (0, Inputs([stream([(0, 90)])], silences=quiet)),
        (50, Inputs([stream([(50, 91)])], silences=quiet)),
        (100, Inputs([stream([(100, 92)])], silences=quiet)),
        (110, Inputs([stream()], silences=quiet)),
    ]
    _, out = run(warm(), cycles)
    assert [(t.kind, t.at, t.silenced) for t in out] == [
        (FIRING, T0, True),
        (RENOTIFY, at(100), False),
    ]


def test_resolve_of_an_alert_nobody_heard_is_silent() -> None:
    quiet = [silence(0, 100)]
    cycles = [
        (0, Inputs([stream([(0, 90)])], silences=quiet)),
        (200, Inputs([stream([(200, 10)])])),
    ]
    _, out = run(warm(), cycles)
    assert [(t.kind, t.silenced) for t in out] == [(FIRING, True), (RESOLVED, True)]


def test_silence_of_another_rule_or_scope_does_not_apply() -> None:
    quiet = [silence(0, 100, rules=("other",)), silence(0, 100, scope={"room": "cellar"})]
    _, out = run(warm(), [(0, Inputs([stream([(0, 90)])], silences=quiet))])
    assert [t.silenced for t in out] == [False]


def test_maintenance_window_silences() -> None:
    window = MaintenanceWindow(start=time(11, 30), duration=3600, scope={"node": "pi-attic"})
    _, out = run(warm(), [(0, Inputs([stream([(0, 90)])], maintenance=[window]))])
    assert [t.silenced for t in out] == [True]
    node_rule = rule(kind="node_status")
    _, out = run(node_rule, [(0, Inputs(nodes=[node(NodeStatus.OFFLINE)], maintenance=[window]))])
    assert [t.silenced for t in out] == [True]


def test_repeat_interval() -> None:
    r = warm(repeat="1h")
    cycles = [(s, Inputs([stream([(s, 90)])])) for s in range(0, 2 * 3600 + 1, 600)]
    _, out = run(r, cycles)
    assert kinds(out) == [(FIRING, T0), (RENOTIFY, at(3600)), (RENOTIFY, at(7200))]


def test_no_repeat_notifies_once() -> None:
    cycles = [(s, Inputs([stream([(s, 90)])])) for s in range(0, 7200, 600)]
    _, out = run(warm(), cycles)
    assert kinds(out) == [(FIRING, T0)]


# --- state: persisted, restart-safe -------------------------------------------------------------


def test_state_survives_a_restart_without_refiring() -> None:
    r = warm(clear_below=80, repeat="1h")
    state, out = run(r, [(0, Inputs([stream([(0, 90)])]))])
    assert len(out) == 1
    saved = json.dumps({"r": state.to_dict()})  # what the server stores
    restored = AlertState.from_dict(json.loads(saved)["r"])
    assert restored == state
    _, out = run(r, [(600, Inputs([stream([(600, 95)])]))], restored)
    assert out == []  # neither re-fired nor forgotten
    _, out = run(r, [(3600, Inputs([stream([(3600, 70)])]))], restored)
    assert kinds(out) == [(RESOLVED, at(3600))]


def test_rich_state_round_trips() -> None:
    state = AlertState(
        {
            "a": SubjectState(AlertStatus.PENDING, T0, None, 1.5, (1.0, 2.0), ((T0, 3.0),)),
            "b": SubjectState(AlertStatus.FIRING, T0, at(5), None),
        }
    )
    assert AlertState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert state.firing() == ["b"]
    assert AlertState.from_dict({}) == AlertState()


def test_subjects_missing_from_a_cycle_keep_their_state() -> None:
    state, _ = run(warm(), [(0, Inputs([stream([(0, 90)])]))])
    after, out = run(warm(), [(60, Inputs([]))], state)
    assert (after, out) == (state, [])


def test_evaluate_all() -> None:
    rules = parse_rules(
        {
            "rules": [
                {"name": "hot", "kind": "threshold", "field": "temperature_c", "above": 85},
                {"name": "down", "kind": "node_status"},
            ]
        }
    ).rules
    inputs = Inputs([stream([(0, 90)])], [node(NodeStatus.OFFLINE)])
    states, out = evaluate_all(rules, {}, inputs, T0)
    assert sorted(t.rule for t in out) == ["down", "hot"]
    assert set(states) == {"hot", "down"}
    states, out = evaluate_all(rules, states, inputs, at(60))
    assert out == []


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    cycles=st.lists(
        st.lists(st.floats(min_value=60, max_value=100), max_size=6), min_size=1, max_size=40
    ),
    clear_gap=st.sampled_from([0.0, 2.0, 5.0]),
    pending=st.sampled_from([0, 30, 120]),
    repeat=st.sampled_from([None, 300, 900]),
    silenced_cycles=st.sets(st.integers(min_value=0, max_value=39), max_size=10),
)
def test_never_notifies_firing_twice_without_a_resolve_or_the_repeat(
    cycles: list[list[float]],
    clear_gap: float,
    pending: int,
    repeat: int | None,
    silenced_cycles: set[int],
) -> None:
    extra: dict[str, Any] = {"clear_below": 85 - clear_gap, "for": pending}
    if repeat is not None:
        extra["repeat"] = repeat
    r = warm(**extra)
    state = AlertState()
    out: list[Transition] = []
    clock = 0
    for number, values in enumerate(cycles):
        samples = [(clock + i * 10, v) for i, v in enumerate(values)]
        clock += 60
        quiet = [silence(clock - 60, clock)] if number in silenced_cycles else []
        state, transitions = evaluate(
            r, state, Inputs([stream(samples)], silences=quiet), at(clock - 1)
        )
        out.extend(transitions)
        state = AlertState.from_dict(
            json.loads(json.dumps(state.to_dict()))
        )  # persisted each cycle
    firing = False
    last_notice: datetime | None = None
    for t in out:
        if t.kind is FIRING:
            assert not firing, "fired twice without a resolve"
            firing = True
            last_notice = None if t.silenced else t.at
        elif t.kind is RESOLVED:
            assert firing
            firing = False
        else:
            assert firing
            assert not t.silenced
            if last_notice is not None:
                assert repeat is not None
                assert (t.at - last_notice).total_seconds() >= repeat
            last_notice = t.at
    assert (state.get(KEY).status is AlertStatus.FIRING) == firing
