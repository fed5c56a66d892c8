"""Contract of :class:`~beamwarden.server.store.alerts.AlertStore` on every store (SQLite with
either writer, PostgreSQL): alert state, evaluator documents, silences, check-ins, the outbox, and
the evaluator's view of new readings and telemetry."""

from __future__ import annotations

import pytest

from beamwarden.server.alert_records import CycleWrite, NewNotification, NewSilence, Sample
from beamwarden.server.errors import AlreadyExists, NotFound
from beamwarden.server.store import SqlStore
from beamwarden.server.store.alerts import AlertStore
from tests.contract.test_store import BASE, S, batch, heartbeat, nodes, reading


@pytest.fixture
def alerts(store: SqlStore) -> AlertStore:
    return AlertStore(store.engine, 10.0)


def note(rule: str, created_us: int = BASE, channel: str = "hook") -> NewNotification:
    return NewNotification(created_us, channel, rule, "node-1", "firing", f"{rule} fired", "body")


async def test_a_cycle_saves_states_documents_and_outbox_together(alerts: AlertStore) -> None:
    state = {"subjects": {"node-1": {"status": "firing", "since": None}}}
    await alerts.save_cycle(
        CycleWrite(
            BASE,
            states={"hot": state, "gone": None},
            meta={"cursor": {"received_us": BASE}},
            outbox=[note("hot"), note("hot", channel="mail")],
        )
    )
    assert await alerts.load_states() == {"hot": state}
    assert await alerts.get_meta("cursor") == {"received_us": BASE}
    state2 = {"subjects": {}}
    await alerts.save_cycle(
        CycleWrite(
            BASE + S, states={"hot": None, "cold": state2}, meta={"cursor": {"received_us": 7}}
        )
    )
    assert await alerts.load_states() == {"cold": state2}
    assert await alerts.get_meta("cursor") == {"received_us": 7}
    assert await alerts.get_meta("missing") is None
    due = await alerts.due_notifications(BASE)
    assert [(n.channel, n.rule, n.status, n.attempts) for n in due] == [
        ("hook", "hot", "pending", 0),
        ("mail", "hot", "pending", 0),
    ]


async def test_outbox_updates_and_due_times(alerts: AlertStore) -> None:
    await alerts.save_cycle(CycleWrite(BASE, outbox=[note("a"), note("b")]))
    first, second = await alerts.due_notifications(BASE)
    await alerts.update_notification(
        first.id, status="pending", attempts=1, next_attempt_us=BASE + 30 * S, error="HTTP 500"
    )
    await alerts.update_notification(
        second.id, status="sent", attempts=1, next_attempt_us=BASE, sent_us=BASE
    )
    assert await alerts.due_notifications(BASE + 29 * S) == []
    [again] = await alerts.due_notifications(BASE + 30 * S)
    assert (again.id, again.attempts, again.error) == (first.id, 1, "HTTP 500")
    listed = await alerts.list_notifications(10)
    assert [(n.rule, n.status) for n in listed] == [("b", "sent"), ("a", "pending")]
    assert [n.rule for n in await alerts.list_notifications(10, before_id=listed[0].id)] == ["a"]


async def test_silences_are_listed_until_they_end_and_deleted_once(alerts: AlertStore) -> None:
    new = NewSilence(
        "fan", ("hot",), {"node": ["node-1"]}, BASE, BASE + 60 * S, "fixing", "me", BASE
    )
    made = await alerts.add_silence(new)
    assert (made.name, made.rules, made.scope, made.deleted_us) == (
        "fan",
        ("hot",),
        {"node": ["node-1"]},
        None,
    )
    assert [s.id for s in await alerts.list_silences(BASE + 59 * S)] == [made.id]
    assert await alerts.list_silences(BASE + 60 * S) == []
    gone = await alerts.delete_silence(made.id, BASE + S)
    assert gone.deleted_us == BASE + S
    assert await alerts.list_silences() == []
    with pytest.raises(NotFound):
        await alerts.delete_silence(made.id, BASE + 2 * S)


async def test_checkins_by_hash_pings_and_unique_names(alerts: AlertStore) -> None:
    made = await alerts.create_checkin("backup", b"h" * 32, 3600.0, None, 60.0, BASE)
    assert (made.name, made.every_s, made.cron, made.last_ping_us) == ("backup", 3600.0, None, None)
    with pytest.raises(AlreadyExists):
        await alerts.create_checkin("backup", b"i" * 32, None, "* * * * *", 0.0, BASE)
    assert await alerts.find_checkin(b"x" * 32) is None
    found = await alerts.find_checkin(b"h" * 32)
    assert found == made
    pinged = await alerts.record_ping(made.id, "fail", "disk full", BASE + S)
    assert (pinged.last_ping_us, pinged.last_status, pinged.last_message) == (
        BASE + S,
        "fail",
        "disk full",
    )
    assert await alerts.list_checkins() == [pinged]
    await alerts.delete_checkin("backup")
    with pytest.raises(NotFound):
        await alerts.delete_checkin("backup")


async def test_new_samples_by_receive_time_with_slotted_fields(
    store: SqlStore, alerts: AlertStore
) -> None:
    await nodes(store, "node-1")
    climate = [
        reading(
            payload={"temperature_c": 20.0 + i, "humidity_pct": 40.0},
            sensor_id="bme",
            sensor_type="climate",
        )
        for i in range(3)
    ]
    await store.write_readings([batch(climate, received_us=BASE + 10 * S)])
    await store.write_readings([batch([reading(payload={"cps": 5})], received_us=BASE + 20 * S)])
    sensors = {s.sensor_id: s for s in await alerts.sensors()}
    assert sorted(sensors) == ["bme", "geiger-0"]
    assert set(sensors["bme"].fields) == {"temperature_c", "humidity_pct"}
    assert sensors["bme"].node_id == "node-1"
    assert sensors["bme"].last_ts_us == BASE + 2 * S
    got = await alerts.new_samples(list(sensors.values()), BASE, BASE, BASE + 10 * S)
    ref = sensors["bme"].ref
    assert got == [
        Sample(ref, "node-1", BASE + i * S, {"temperature_c": 20.0 + i, "humidity_pct": 40.0})
        for i in range(3)
    ]
    later = await alerts.new_samples(list(sensors.values()), BASE, BASE + 10 * S, BASE + 20 * S)
    assert [(s.sensor_ref, s.values) for s in later] == [(sensors["geiger-0"].ref, {"cps": 5.0})]
    # stamped before since_ts: received in the window, but too late to judge
    assert await alerts.new_samples(list(sensors.values()), BASE + S, BASE, BASE + 10 * S) == [
        Sample(ref, "node-1", BASE + i * S, {"temperature_c": 20.0 + i, "humidity_pct": 40.0})
        for i in (1, 2)
    ]


async def test_latest_metrics_per_node(store: SqlStore, alerts: AlertStore) -> None:
    await nodes(store, "node-1", "node-2")
    await store.write_heartbeats(
        [
            heartbeat("node-1", BASE, metrics={"queue_depth": 5, "throttled": True}),
            heartbeat("node-1", BASE + S, metrics={"queue_depth": 7}),
        ]
    )
    assert await alerts.latest_metrics() == {"node-1": {"queue_depth": 7.0}}
