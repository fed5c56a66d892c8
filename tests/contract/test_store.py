"""The store contract: one suite, run against every adapter (SQLite and PostgreSQL).

Each test gets an empty migrated database (``store`` fixture in ``conftest.py``). Values are
checked by hand (series buckets, aggregates, pages), never by re-running the code under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, text

from beamwarden.protocol import InstanceState, Reading, Scope, parse_stream_id
from beamwarden.server.errors import AlreadyExists, NotFound, StoreUnavailable
from beamwarden.server.records import (
    FLAG_SERVER_TIMESTAMP,
    FLAG_TIMESTAMP_SUSPECT,
    BatchOutcome,
    EventFilter,
    Heartbeat,
    NewEvent,
    OperatorFields,
    ReadingBatch,
    ReadingFilter,
    ReadingRow,
    ReportedFields,
    SeriesQuery,
    SeriesRow,
)
from beamwarden.server.store import SqlStore, StoreConfig, normalise_url, open_store
from beamwarden.server.store.config import sqlite_path
from beamwarden.server.store.ingest import stream_seq
from beamwarden.server.store.schema import (
    reading_keys,
    sensors,
    sequences,
    stream_ranges,
    telemetry,
)
from beamwarden.server.store.schema import readings as readings_table

#: 2027-01-15T08:00:00Z in epoch microseconds; a multiple of 60 s
BASE = 1_800_000_000_000_000
S = 1_000_000  # one second in microseconds
DAY = 86_400 * S


# -- helpers ------------------------------------------------------------------------------------


def reading(
    node_id: str = "node-1",
    payload: dict[str, Any] | None = None,
    reading_id: str | None = None,
    sensor_id: str = "geiger-0",
    sensor_type: str = "geiger",
) -> Reading:
    return Reading(
        node_id=node_id,
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        payload={"cps": 1} if payload is None else payload,
        timestamp=None,
        reading_id=reading_id,
    )


def batch(
    readings: list[Reading],
    ts: list[int] | None = None,
    source: str | None = None,
    received_us: int = BASE + 3600 * S,
    flags: list[int] | None = None,
) -> ReadingBatch:
    return ReadingBatch(
        source=source or (readings[0].node_id if readings else "node-1"),
        received_us=received_us,
        readings=readings,
        ts_us=ts if ts is not None else [BASE + i * S for i in range(len(readings))],
        flags=flags if flags is not None else [0] * len(readings),
    )


async def nodes(store: SqlStore, *node_ids: str) -> None:
    for node_id in node_ids:
        await store.create_node(node_id, "pi-log", BASE)


async def all_readings(store: SqlStore, flt: ReadingFilter | None = None) -> list[ReadingRow]:
    return await store.list_readings(flt or ReadingFilter(), 100_000, None)


async def table(store: SqlStore, stmt: Any) -> list[Any]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


async def ranges_of_stream(store: SqlStore, node_id: str, stream: str) -> list[tuple[int, int]]:
    r = stream_ranges.c
    rows = await table(
        store,
        select(r.lo, r.hi).where(r.node_id == node_id, r.stream == stream).order_by(r.lo),
    )
    return [(lo, hi) for lo, hi in rows]


async def slots_of(store: SqlStore, sensor_id: str) -> dict[str, int]:
    rows = await table(store, select(sensors.c.fields).where(sensors.c.sensor_id == sensor_id))
    assert len(rows) == 1
    return dict(rows[0][0])


def heartbeat(node_id: str, received_us: int, **changes: Any) -> Heartbeat:
    beat = Heartbeat(
        node_id=node_id,
        ts_us=received_us - 2 * S,
        received_us=received_us,
        role="pi-log",
        uptime_seconds=120.0,
        software_version="2.1.0",
        ip_address="10.0.0.7",
        interval_seconds=15.0,
        protocol_version="1.0",
        instance_id="inst-a",
        state=InstanceState.ACTIVE,
        metrics={"cpu_percent": 12.5, "throttled": False},
        tags={"rack": "r1"},
        clock_offset_seconds=2.0,
        clock_samples=3,
    )
    return dataclasses.replace(beat, **changes)


# -- nodes --------------------------------------------------------------------------------------


async def test_create_and_get_node(store: SqlStore) -> None:
    row = await store.create_node("node-1", "pi-log", BASE)
    assert row.node_id == "node-1"
    assert row.role == "pi-log"
    assert row.created_us == BASE
    assert row.operator_tags == {}
    assert row.reported_tags == {}
    assert row.interval_seconds == 30.0
    assert row.clock_samples == 0
    assert row.enrolment_open is False
    assert row.revoked_us is None
    assert row.last_heartbeat_us is None
    assert await store.get_node("node-1") == row
    assert await store.get_node("nope") is None


async def test_create_node_twice_is_already_exists(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", BASE)
    with pytest.raises(AlreadyExists):
        await store.create_node("node-1", "logexp", BASE + S)
    # the store is still usable after the failed insert
    assert (await store.get_node("node-1")).role == "pi-log"  # type: ignore[union-attr]


async def test_list_nodes_pages_by_node_id(store: SqlStore) -> None:
    for node_id in ["c-3", "a-1", "e-5", "b-2", "d-4"]:
        await store.create_node(node_id, "pi-log", BASE)
    first = await store.list_nodes(2, None)
    assert [n.node_id for n in first] == ["a-1", "b-2"]
    second = await store.list_nodes(2, first[-1].node_id)
    assert [n.node_id for n in second] == ["c-3", "d-4"]
    third = await store.list_nodes(2, second[-1].node_id)
    assert [n.node_id for n in third] == ["e-5"]
    assert await store.list_nodes(2, "e-5") == []


async def test_registration_replaces_the_report_and_keeps_operator_fields(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", BASE)
    await store.set_operator_fields(
        "node-1",
        OperatorFields(display_name="Attic", site="home", room="attic", operator_tags={"o": "1"}),
    )
    first = ReportedFields("pi-log", "pi-a", "10.0.0.1", "2.0.0", {"fw": "a", "old": "x"})
    row = await store.record_registration("node-1", first, BASE + S)
    assert (row.hostname, row.ip_address, row.software_version) == ("pi-a", "10.0.0.1", "2.0.0")
    assert row.reported_tags == {"fw": "a", "old": "x"}
    assert row.registered_us == BASE + S
    second = ReportedFields("logexp", "pi-b", "10.0.0.2", "2.1.0", {"fw": "b"})
    row = await store.record_registration("node-1", second, BASE + 2 * S)
    assert row.role == "logexp"
    assert (row.hostname, row.ip_address, row.software_version) == ("pi-b", "10.0.0.2", "2.1.0")
    assert row.reported_tags == {"fw": "b"}  # replaced, not merged
    assert row.registered_us == BASE + 2 * S
    assert (row.display_name, row.site, row.room) == ("Attic", "home", "attic")
    assert row.operator_tags == {"o": "1"}
    assert await store.get_node("node-1") == row


async def test_registration_of_an_unknown_node_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        await store.record_registration(
            "ghost", ReportedFields("pi-log", "h", "10.0.0.1", "1", {}), BASE
        )


async def test_operator_fields_change_only_what_is_given(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", BASE)
    row = await store.set_operator_fields("node-1", OperatorFields(display_name="One", site="lab"))
    assert (row.display_name, row.site, row.room, row.operator_tags) == ("One", "lab", None, {})
    row = await store.set_operator_fields(
        "node-1", OperatorFields(room="r2", operator_tags={"k": "v"})
    )
    assert (row.display_name, row.site, row.room, row.operator_tags) == (
        "One",
        "lab",
        "r2",
        {"k": "v"},
    )
    assert await store.set_operator_fields("node-1", OperatorFields()) == row
    with pytest.raises(NotFound):
        await store.set_operator_fields("ghost", OperatorFields(site="x"))
    with pytest.raises(NotFound):
        await store.set_operator_fields("ghost", OperatorFields())


async def test_enrolment_open_is_set_and_cleared(store: SqlStore) -> None:
    await store.create_node("node-1", "pi-log", BASE)
    assert (await store.set_enrolment_open("node-1", True)).enrolment_open is True
    assert (await store.get_node("node-1")).enrolment_open is True  # type: ignore[union-attr]
    assert (await store.set_enrolment_open("node-1", False)).enrolment_open is False
    with pytest.raises(NotFound):
        await store.set_enrolment_open("ghost", True)


async def test_revoke_node_revokes_it_and_its_tokens(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    t1 = await store.create_token(b"\x01" * 32, "node", "n1", frozenset({Scope.NODE}), "node-1", 1)
    t2 = await store.create_token(b"\x02" * 32, "node", "n1b", frozenset({Scope.NODE}), "node-1", 1)
    t3 = await store.create_token(b"\x03" * 32, "node", "n2", frozenset({Scope.NODE}), "node-2", 1)
    row = await store.revoke_node("node-1", BASE + 5 * S)
    assert row.revoked_us == BASE + 5 * S
    assert (await store.find_token(b"\x01" * 32)).revoked_us == BASE + 5 * S  # type: ignore[union-attr]
    assert (await store.find_token(b"\x02" * 32)).revoked_us == BASE + 5 * S  # type: ignore[union-attr]
    assert (await store.find_token(b"\x03" * 32)).revoked_us is None  # type: ignore[union-attr]
    again = await store.revoke_node("node-1", BASE + 9 * S)
    assert again.revoked_us == BASE + 5 * S  # the first revocation time is kept
    assert {t1.id, t2.id, t3.id} == {t.id for t in await store.list_tokens()}
    with pytest.raises(NotFound):
        await store.revoke_node("ghost", BASE)


# -- tokens -------------------------------------------------------------------------------------


async def test_tokens_create_find_list(store: SqlStore) -> None:
    await nodes(store, "node-1")
    scopes = frozenset({Scope.NODE, Scope.RELAY})
    node_token = await store.create_token(b"\xaa" * 32, "node", "node-1", scopes, "node-1", BASE)
    assert node_token.scopes == scopes
    assert (node_token.kind, node_token.name, node_token.node_id) == ("node", "node-1", "node-1")
    assert node_token.created_us == BASE
    assert node_token.revoked_us is None
    user = await store.create_token(
        b"\xbb" * 32, "user", "grafana", frozenset({Scope.READ}), None, 7
    )
    assert user.node_id is None
    assert await store.find_token(b"\xaa" * 32) == node_token
    assert await store.find_token(b"\xbb" * 32) == user
    assert await store.find_token(b"\xcc" * 32) is None
    assert await store.list_tokens() == [node_token, user]
    with pytest.raises(AlreadyExists):
        await store.create_token(b"\xaa" * 32, "user", "dup", frozenset({Scope.READ}), None, 8)


async def test_revoke_token(store: SqlStore) -> None:
    token = await store.create_token(b"\x11" * 32, "user", "x", frozenset({Scope.ADMIN}), None, 1)
    revoked = await store.revoke_token(token.id, BASE)
    assert revoked.revoked_us == BASE
    assert (await store.revoke_token(token.id, BASE + S)).revoked_us == BASE
    assert await store.find_token(b"\x11" * 32) == revoked  # found, revoked or not
    with pytest.raises(NotFound):
        await store.revoke_token(token.id + 1000, BASE)


async def test_revoke_node_tokens_counts_live_tokens_only(store: SqlStore) -> None:
    await nodes(store, "node-1")
    a = await store.create_token(b"\x01" * 32, "node", "a", frozenset({Scope.NODE}), "node-1", 1)
    await store.create_token(b"\x02" * 32, "node", "b", frozenset({Scope.NODE}), "node-1", 1)
    await store.create_token(b"\x03" * 32, "user", "u", frozenset({Scope.READ}), None, 1)
    await store.revoke_token(a.id, BASE)
    assert await store.revoke_node_tokens("node-1", BASE + S) == 1
    assert await store.revoke_node_tokens("node-1", BASE + 2 * S) == 0
    assert (await store.find_token(b"\x01" * 32)).revoked_us == BASE  # type: ignore[union-attr]
    assert (await store.find_token(b"\x02" * 32)).revoked_us == BASE + S  # type: ignore[union-attr]
    assert (await store.find_token(b"\x03" * 32)).revoked_us is None  # type: ignore[union-attr]


# -- events -------------------------------------------------------------------------------------


async def test_several_events_are_added_in_one_call(store: SqlStore) -> None:
    await store.add_events([])  # nothing to write is not an error
    await store.add_events(
        [
            NewEvent(BASE, "device_discovered", f"device {i}", actor="bridge:gw", data={"i": i})
            for i in range(3)
        ]
    )
    got = await store.list_events(EventFilter(), 10, None)
    assert [(e.message, e.actor, e.data) for e in got] == [
        (f"device {i}", "bridge:gw", {"i": i}) for i in (2, 1, 0)
    ]


async def test_events_newest_first_with_paging_and_filters(store: SqlStore) -> None:
    ids = []
    for i in range(6):
        ids.append(
            await store.add_event(
                NewEvent(
                    ts_us=BASE + i * S,
                    kind="node.registered" if i % 2 == 0 else "lease.conflict",
                    message=f"event {i}",
                    node_id="node-1" if i < 4 else "node-2",
                    actor="admin" if i == 0 else None,
                    request_id=f"req-{i}",
                    data={"i": i, "nested": {"ok": True}},
                )
            )
        )
    assert ids == sorted(ids)
    assert len(set(ids)) == 6
    newest = await store.list_events(EventFilter(), 4, None)
    assert [e.message for e in newest] == ["event 5", "event 4", "event 3", "event 2"]
    rest = await store.list_events(EventFilter(), 4, newest[-1].id)
    assert [e.message for e in rest] == ["event 1", "event 0"]
    first = rest[-1]
    assert (first.kind, first.node_id, first.actor, first.request_id) == (
        "node.registered",
        "node-1",
        "admin",
        "req-0",
    )
    assert first.data == {"i": 0, "nested": {"ok": True}}
    assert first.ts_us == BASE
    by_node = await store.list_events(EventFilter(node_id="node-2"), 10, None)
    assert [e.message for e in by_node] == ["event 5", "event 4"]
    by_kind = await store.list_events(EventFilter(kind="lease.conflict"), 10, None)
    assert [e.message for e in by_kind] == ["event 5", "event 3", "event 1"]
    both = await store.list_events(EventFilter(node_id="node-1", kind="node.registered"), 1, None)
    assert [e.message for e in both] == ["event 2"]
    window = await store.list_events(
        EventFilter(since_us=BASE + 1 * S, until_us=BASE + 3 * S), 10, None
    )
    assert [e.message for e in window] == ["event 2", "event 1"]  # since inclusive, until not


# -- heartbeats ---------------------------------------------------------------------------------


async def test_write_heartbeats_updates_last_facts_and_keeps_telemetry(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    await store.write_heartbeats(
        [
            heartbeat("node-1", BASE + 10 * S),
            heartbeat("node-2", BASE + 11 * S, state=None, instance_id=None),
            heartbeat(
                "node-1",
                BASE + 20 * S,
                uptime_seconds=130.0,
                state=InstanceState.STOPPING,
                clock_offset_seconds=1.5,
                clock_samples=4,
                interval_seconds=30.0,
            ),
            heartbeat("ghost", BASE + 21 * S),  # not in the inventory: skipped
        ]
    )
    one = await store.get_node("node-1")
    assert one is not None
    assert one.last_heartbeat_us == BASE + 20 * S
    assert one.uptime_seconds == 130.0
    assert one.state is InstanceState.STOPPING
    assert one.instance_id == "inst-a"
    assert one.protocol_version == "1.0"
    assert one.interval_seconds == 30.0
    assert (one.clock_offset_seconds, one.clock_samples) == (1.5, 4)
    two = await store.get_node("node-2")
    assert two is not None
    assert two.last_heartbeat_us == BASE + 11 * S
    assert (two.state, two.instance_id, two.interval_seconds) == (None, None, 15.0)
    t = telemetry.c
    rows = await table(
        store, select(t.received_us, t.ts_us, t.metrics, t.tags, t.state).order_by(t.received_us)
    )
    assert [r[0] for r in rows] == [BASE + 10 * S, BASE + 11 * S, BASE + 20 * S]
    assert rows[0][1] == BASE + 8 * S
    assert rows[0][2] == {"cpu_percent": 12.5, "throttled": False}
    assert rows[0][3] == {"rack": "r1"}
    assert [r[4] for r in rows] == ["active", None, "stopping"]
    await store.write_heartbeats([])  # nothing to do


# -- readings: writing and deduplication ----------------------------------------------------------


async def test_write_and_read_back(store: SqlStore) -> None:
    await nodes(store, "node-1")
    payload = {"cps": 3, "cpm": 180.5, "mode": "SLOW", "tube_type": "SBM-20"}
    flags = [FLAG_TIMESTAMP_SUSPECT, FLAG_SERVER_TIMESTAMP]
    out = await store.write_readings(
        [batch([reading(payload=payload, reading_id="q:1"), reading()], flags=flags)]
    )
    assert out == [BatchOutcome(accepted=2, duplicates=0)]
    rows = await all_readings(store)
    assert len(rows) == 2
    first, second = rows
    assert (first.node_id, first.sensor_id, first.sensor_type) == ("node-1", "geiger-0", "geiger")
    assert first.payload == payload
    assert (first.ts_us, first.received_us) == (BASE, BASE + 3600 * S)
    assert (first.reading_id, first.source, first.flags) == ("q:1", None, FLAG_TIMESTAMP_SUSPECT)
    assert (second.reading_id, second.flags, second.ts_us) == (
        None,
        FLAG_SERVER_TIMESTAMP,
        BASE + S,
    )
    assert second.id > first.id


async def test_readings_without_an_id_are_never_duplicates(store: SqlStore) -> None:
    await nodes(store, "node-1")
    group = [batch([reading(), reading()], ts=[BASE, BASE])]
    assert await store.write_readings(group) == [BatchOutcome(2, 0)]
    assert await store.write_readings(group) == [BatchOutcome(2, 0)]
    assert await store.count_readings(ReadingFilter()) == 4


async def test_one_outcome_per_batch_in_order_even_when_empty(store: SqlStore) -> None:
    await nodes(store, "node-1")
    empty = batch([])
    assert await store.write_readings([]) == []
    assert await store.write_readings([empty]) == [BatchOutcome(0, 0)]
    out = await store.write_readings([empty, batch([reading(reading_id="s:1")]), empty])
    assert out == [BatchOutcome(0, 0), BatchOutcome(1, 0), BatchOutcome(0, 0)]


async def test_stream_duplicates_within_a_batch(store: SqlStore) -> None:
    await nodes(store, "node-1")
    readings = [reading(reading_id=f"q:{seq}") for seq in (1, 2, 2, 3, 1)]
    out = await store.write_readings(
        [batch(readings, ts=[BASE, BASE + S, BASE + S, BASE + 2 * S, BASE])]
    )
    assert out == [BatchOutcome(accepted=3, duplicates=2)]
    assert [r.reading_id for r in await all_readings(store)] == ["q:1", "q:2", "q:3"]
    assert await ranges_of_stream(store, "node-1", "q:") == [(1, 3)]


async def test_stream_duplicates_across_batches_of_one_group(store: SqlStore) -> None:
    await nodes(store, "node-1")
    a = batch([reading(reading_id="q:1"), reading(reading_id="q:2")], ts=[BASE, BASE + S])
    b = batch([reading(reading_id="q:2"), reading(reading_id="q:3")], ts=[BASE + S, BASE + 2 * S])
    assert await store.write_readings([a, b]) == [BatchOutcome(2, 0), BatchOutcome(1, 1)]
    assert await store.count_readings(ReadingFilter()) == 3


async def test_stream_duplicates_across_groups(store: SqlStore) -> None:
    await nodes(store, "node-1")
    ts = [BASE + i * S for i in range(5)]
    first = batch([reading(reading_id=f"q:{i}") for i in range(1, 6)], ts=ts)
    assert await store.write_readings([first]) == [BatchOutcome(5, 0)]
    assert await store.write_readings([first]) == [BatchOutcome(0, 5)]
    mixed = batch([reading(reading_id=f"q:{i}") for i in (4, 5, 6, 7)], ts=ts[3:] + [ts[4]] * 2)
    assert await store.write_readings([mixed]) == [BatchOutcome(2, 2)]
    assert await ranges_of_stream(store, "node-1", "q:") == [(1, 7)]
    assert await store.count_readings(ReadingFilter()) == 7


async def test_streams_are_per_node_and_per_stream_name(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    group = [
        batch([reading("node-1", reading_id="q:1"), reading("node-1", reading_id="q-1")]),
        batch([reading("node-2", reading_id="q:1")]),
        batch([reading("node-1", reading_id="q:01")]),  # leading zero: an opaque id
    ]
    assert await store.write_readings(group) == [
        BatchOutcome(2, 0),
        BatchOutcome(1, 0),
        BatchOutcome(1, 0),
    ]
    assert await ranges_of_stream(store, "node-1", "q:") == [(1, 1)]
    assert await ranges_of_stream(store, "node-1", "q-") == [(1, 1)]
    assert await ranges_of_stream(store, "node-2", "q:") == [(1, 1)]
    keys = await table(store, select(reading_keys.c.node_id, reading_keys.c.reading_id))
    assert keys == [("node-1", "q:01")]


async def test_out_of_order_seqs_merge_ranges(store: SqlStore) -> None:
    await nodes(store, "node-1")

    async def send(*seqs: int) -> BatchOutcome:
        readings = [reading(reading_id=f"s:{seq}") for seq in seqs]
        (out,) = await store.write_readings([batch(readings, ts=[BASE + q * S for q in seqs])])
        return out

    assert await send(10, 12, 14) == BatchOutcome(3, 0)
    assert await ranges_of_stream(store, "node-1", "s:") == [(10, 10), (12, 12), (14, 14)]
    assert await send(20, 1, 2) == BatchOutcome(3, 0)
    assert await ranges_of_stream(store, "node-1", "s:") == [
        (1, 2),
        (10, 10),
        (12, 12),
        (14, 14),
        (20, 20),
    ]
    assert await send(13, 11, 12) == BatchOutcome(2, 1)
    assert await ranges_of_stream(store, "node-1", "s:") == [(1, 2), (10, 14), (20, 20)]
    assert await send(3, 9, 15, 19, 16, 18, 17) == BatchOutcome(7, 0)
    assert await ranges_of_stream(store, "node-1", "s:") == [(1, 3), (9, 20)]
    assert await send(*range(1, 22)) == BatchOutcome(6, 15)  # 4..8 and 21 are new
    assert await ranges_of_stream(store, "node-1", "s:") == [(1, 21)]
    assert await store.count_readings(ReadingFilter()) == 21


async def test_opaque_ids_deduplicated_within_the_window(store_config: StoreConfig) -> None:
    store = await open_store(dataclasses.replace(store_config, opaque_id_window_s=3600.0))
    try:
        await nodes(store, "node-1")
        rid = "550e8400-e29b-41d4-a716-44665544000f"  # ends in a hex digit: opaque
        t0 = BASE + DAY
        same = [reading(reading_id=rid), reading(reading_id="abc"), reading(reading_id=rid)]
        first = batch(same, ts=[BASE, BASE + S, BASE], received_us=t0)
        assert await store.write_readings([first]) == [BatchOutcome(2, 1)]
        later = dataclasses.replace(first, received_us=t0 + 3599 * S)
        assert await store.write_readings([later]) == [BatchOutcome(0, 3)]
        # past the window the id is forgotten: the same reading is stored again
        outside = dataclasses.replace(first, received_us=t0 + 3601 * S)
        assert await store.write_readings([outside]) == [BatchOutcome(2, 1)]
        assert await store.count_readings(ReadingFilter()) == 4
        # ... and remembered again from then on
        assert await store.write_readings([outside]) == [BatchOutcome(0, 3)]
    finally:
        await store.close()


async def test_prune_reading_keys(store: SqlStore) -> None:
    await nodes(store, "node-1")
    await store.write_readings([batch([reading(reading_id="a")], received_us=BASE)])
    await store.write_readings([batch([reading(reading_id="b")], received_us=BASE + 10 * S)])
    assert await store.prune_reading_keys(BASE + 10 * S) == 1
    keys = await table(store, select(reading_keys.c.reading_id))
    assert keys == [("b",)]
    assert await store.prune_reading_keys(BASE) == 0


async def test_a_known_id_with_another_payload_is_a_conflict(store: SqlStore) -> None:
    await nodes(store, "node-1")
    original = [reading(payload={"cps": 1}, reading_id="q:1"), reading(reading_id="op-1")]
    assert await store.write_readings([batch(original, ts=[BASE, BASE])]) == [BatchOutcome(2, 0)]
    # the same payload with keys in another order is not a conflict
    same = reading(payload={"cps": 1}, reading_id="q:1")
    changed = reading(payload={"cps": 2}, reading_id="q:1")
    moved = reading(payload={"cps": 1}, reading_id="op-1")  # other timestamp below
    out = await store.write_readings(
        [batch([same], ts=[BASE]), batch([changed, moved], ts=[BASE, BASE + 5 * S])]
    )
    assert out == [BatchOutcome(0, 1), BatchOutcome(0, 2, ("q:1", "op-1"))]
    rows = await all_readings(store)
    assert [(r.reading_id, r.payload) for r in rows] == [("q:1", {"cps": 1}), ("op-1", {"cps": 1})]


async def test_conflicts_within_one_group(store: SqlStore) -> None:
    await nodes(store, "node-1")
    a = reading(payload={"cps": 1, "cpm": 60}, reading_id="q:1")
    a_again = reading(payload={"cpm": 60, "cps": 1}, reading_id="q:1")
    a_changed = reading(payload={"cps": 9}, reading_id="q:1")
    b = reading(payload={"cps": 1}, reading_id="x")
    b_changed = reading(payload={"cps": 1}, reading_id="x", sensor_id="geiger-1")
    out = await store.write_readings(
        [batch([a, a_again, b], ts=[BASE] * 3), batch([a_changed, b_changed], ts=[BASE] * 2)]
    )
    assert out == [BatchOutcome(2, 1), BatchOutcome(0, 2, ("q:1", "x"))]
    assert await store.count_readings(ReadingFilter()) == 2


async def test_relayed_readings_keep_their_source(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2", "hub")
    relayed = batch(
        [reading("node-1", reading_id="q:1"), reading("node-2"), reading("hub")], source="hub"
    )
    own = batch([reading("node-1", reading_id="q:2")], source="node-1", ts=[BASE + 10 * S])
    assert await store.write_readings([relayed, own]) == [BatchOutcome(3, 0), BatchOutcome(1, 0)]
    rows = await all_readings(store)
    assert [(r.node_id, r.source) for r in rows] == [
        ("node-1", "hub"),
        ("node-2", "hub"),
        ("hub", None),
        ("node-1", None),
    ]
    # the relay shares the node's stream ranges: a retry through the node itself is a duplicate
    again = batch([reading("node-1", reading_id="q:1")], source="node-1")
    assert await store.write_readings([again]) == [BatchOutcome(0, 1)]
    assert [r.reading_id for r in await all_readings(store, ReadingFilter(node_id="node-1"))] == [
        "q:1",
        "q:2",
    ]


async def test_unknown_node_is_not_found_and_stores_nothing(store: SqlStore) -> None:
    await nodes(store, "node-1")
    with pytest.raises(NotFound):
        await store.write_readings(
            [batch([reading("node-1", reading_id="q:1")]), batch([reading("ghost")])]
        )
    assert await store.count_readings(ReadingFilter()) == 0
    assert await store.write_readings([batch([reading(reading_id="q:1")])]) == [BatchOutcome(1, 0)]


async def test_fleet_wide_sensor_is_one_sensor_whichever_node_heard_it(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2", "gw")
    ble = "ble:A4C138123456"

    def climate(node_id: str, t: float) -> Reading:
        return reading(node_id, {"temperature_c": t}, sensor_id=ble, sensor_type="climate")

    group = [
        batch([climate("node-1", 20.0), climate("node-2", 22.0)], ts=[BASE, BASE + S], source="gw"),
        batch([climate("node-1", 24.0)], ts=[BASE + 2 * S]),
    ]
    await store.write_readings(group)
    owners = await table(store, select(sensors.c.owner, sensors.c.sensor_id))
    assert owners == [("", ble)]
    rows = await all_readings(store, ReadingFilter(sensor_id=ble))
    assert [(r.node_id, r.payload["temperature_c"]) for r in rows] == [
        ("node-1", 20.0),
        ("node-2", 22.0),
        ("node-1", 24.0),
    ]
    only_one = await all_readings(store, ReadingFilter(node_id="node-1", sensor_id=ble))
    assert [r.payload["temperature_c"] for r in only_one] == [20.0, 24.0]
    query = SeriesQuery("node-2", ble, "temperature_c", BASE, BASE + 60 * S, 60 * S, ("avg",), 10)
    assert await store.series(query) == [SeriesRow(BASE, {"avg": 22.0})]  # node_id ignored


# -- slots ------------------------------------------------------------------------------------------


async def test_numeric_fields_get_slots_in_order_bools_and_text_do_not(store: SqlStore) -> None:
    await nodes(store, "node-1")
    first = reading(payload={"a": 1, "flag": True, "label": "x", "b": 2.5, "nothing": None})
    await store.write_readings([batch([first], ts=[BASE])])
    assert await slots_of(store, "geiger-0") == {"a": 0, "b": 1}
    second = reading(payload={"c": 3, "a": 4, "flag": False})
    await store.write_readings([batch([second], ts=[BASE + S])])
    assert await slots_of(store, "geiger-0") == {"a": 0, "b": 1, "c": 2}
    rows = await all_readings(store)
    assert rows[0].payload == {"a": 1, "flag": True, "label": "x", "b": 2.5, "nothing": None}
    assert rows[1].payload == {"c": 3, "a": 4, "flag": False}
    # the bool is found through the payload, not a slot
    assert await store.count_readings(ReadingFilter(field="flag")) == 2
    assert await store.count_readings(ReadingFilter(field="nothing")) == 1
    assert await store.count_readings(ReadingFilter(field="c")) == 1
    assert await store.count_readings(ReadingFilter(field="label")) == 1
    series = await store.series(
        SeriesQuery("node-1", "geiger-0", "flag", BASE, BASE + 60 * S, 60 * S, ("count",), 10)
    )
    assert series == []  # a bool is not a number


async def test_ninth_numeric_field_lives_in_the_payload_and_still_has_a_series(
    store: SqlStore,
) -> None:
    await nodes(store, "node-1")
    names = [f"f{i}" for i in range(10)]
    readings = [
        reading(payload={name: i * 10 + k for k, name in enumerate(names)}, sensor_type="many")
        for i in range(3)
    ]
    readings.append(reading(payload={"f9": "text", "f8": True}, sensor_type="many"))
    await store.write_readings([batch(readings, ts=[BASE, BASE + S, BASE + 61 * S, BASE + 62 * S])])
    assert await slots_of(store, "geiger-0") == {f"f{i}": i for i in range(8)}
    assert await store.count_readings(ReadingFilter(field="f8")) == 4
    assert await store.count_readings(ReadingFilter(field="f7")) == 3
    assert await store.count_readings(ReadingFilter(field="f1")) == 3
    # a slotted field carried as text is still found
    await store.write_readings([batch([reading(payload={"f1": "n/a"}, sensor_type="many")])])
    assert await store.count_readings(ReadingFilter(field="f1")) == 4
    assert await store.count_readings(ReadingFilter(field="f10")) == 0

    def query(field: str) -> SeriesQuery:
        aggs = ("avg", "min", "max", "count", "sum")
        return SeriesQuery("node-1", "geiger-0", field, BASE, BASE + 120 * S, 60 * S, aggs, 10)

    # f8 = 8, 18, 28 (then a bool, ignored); f9 = 9, 19, 29 (then text, ignored)
    assert await store.series(query("f8")) == [
        SeriesRow(BASE, {"avg": 13.0, "min": 8.0, "max": 18.0, "count": 2, "sum": 26.0}),
        SeriesRow(BASE + 60 * S, {"avg": 28.0, "min": 28.0, "max": 28.0, "count": 1, "sum": 28.0}),
    ]
    assert await store.series(query("f9")) == [
        SeriesRow(BASE, {"avg": 14.0, "min": 9.0, "max": 19.0, "count": 2, "sum": 28.0}),
        SeriesRow(BASE + 60 * S, {"avg": 29.0, "min": 29.0, "max": 29.0, "count": 1, "sum": 29.0}),
    ]
    assert await store.series(query("f0")) == [
        SeriesRow(BASE, {"avg": 5.0, "min": 0.0, "max": 10.0, "count": 2, "sum": 10.0}),
        SeriesRow(BASE + 60 * S, {"avg": 20.0, "min": 20.0, "max": 20.0, "count": 1, "sum": 20.0}),
    ]
    assert await store.series(query("f10")) == []


async def test_huge_integers_are_kept_in_the_payload(store: SqlStore) -> None:
    """JSON integers beyond int64 (or beyond a double) must not fail the group."""
    await nodes(store, "node-1")
    big = 2**64 - 1
    huge = 10**400
    first = reading(payload={"a": big, "b": huge, "c": 1})
    second = reading(payload={"a": 2, "b": huge})
    assert await store.write_readings([batch([first, second])]) == [BatchOutcome(2, 0)]
    rows = await all_readings(store)
    assert [r.payload for r in rows] == [{"a": big, "b": huge, "c": 1}, {"a": 2, "b": huge}]
    query = SeriesQuery("node-1", "geiger-0", "a", BASE, BASE + 60 * S, 60 * S, ("max",), 10)
    assert await store.series(query) == [SeriesRow(BASE, {"max": float(big)})]
    assert await store.count_readings(ReadingFilter(field="b")) == 2  # slotted, never a double


async def test_slots_survive_a_new_store_instance(
    store: SqlStore, store_config: StoreConfig
) -> None:
    """A second process (or replica) with a cold cache extends the same map, append-only."""
    await nodes(store, "node-1")
    await store.write_readings([batch([reading(payload={"a": 1})])])
    other = await open_store(store_config)
    try:
        await other.write_readings([batch([reading(payload={"b": 2, "a": 3})], ts=[BASE + S])])
        await store.write_readings([batch([reading(payload={"c": 4, "b": 5})], ts=[BASE + 2 * S])])
    finally:
        await other.close()
    assert await slots_of(store, "geiger-0") == {"a": 0, "b": 1, "c": 2}
    query = SeriesQuery("node-1", "geiger-0", "b", BASE, BASE + 60 * S, 60 * S, ("sum",), 10)
    assert await store.series(query) == [SeriesRow(BASE, {"sum": 7.0})]


# -- listing --------------------------------------------------------------------------------------


async def _fixture_readings(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    await store.write_readings(
        [
            batch(
                [
                    reading("node-1", {"cps": 1}, "a:1"),  # BASE
                    reading("node-1", {"temperature_c": 20.5}, None, "bme", "climate"),  # +1
                    reading("node-1", {"cps": 2, "mode": "FAST"}, "a:2"),  # +2
                    reading("node-1", {"temperature_c": 21.5}, None, "bme", "climate"),  # +3
                ]
            ),
            batch(
                [
                    reading("node-2", {"cps": 5}),  # BASE
                    reading("node-2", {"humidity_pct": 40}, None, "bme", "climate"),  # +1
                    reading("node-2", {"temperature_c": 19.0}, None, "bme", "other"),  # +2
                ]
            ),
        ]
    )


async def test_list_filters(store: SqlStore) -> None:
    await _fixture_readings(store)

    async def pick(**kw: Any) -> list[tuple[str, str, str, int]]:
        rows = await all_readings(store, ReadingFilter(**kw))
        return [(r.node_id, r.sensor_id, r.sensor_type, (r.ts_us - BASE) // S) for r in rows]

    everything = await pick()
    assert everything == [
        ("node-1", "geiger-0", "geiger", 0),
        ("node-2", "geiger-0", "geiger", 0),
        ("node-1", "bme", "climate", 1),
        ("node-2", "bme", "climate", 1),
        ("node-1", "geiger-0", "geiger", 2),
        ("node-2", "bme", "other", 2),
        ("node-1", "bme", "climate", 3),
    ]
    assert await pick(node_id="node-2") == [e for e in everything if e[0] == "node-2"]
    assert await pick(node_id="ghost") == []
    assert await pick(sensor_id="bme") == [e for e in everything if e[1] == "bme"]
    assert await pick(sensor_id="bme", node_id="node-1") == [
        ("node-1", "bme", "climate", 1),
        ("node-1", "bme", "climate", 3),
    ]
    assert await pick(sensor_type="climate") == [e for e in everything if e[2] == "climate"]
    assert await pick(sensor_id="bme", sensor_type="other") == [("node-2", "bme", "other", 2)]
    assert await pick(sensor_id="nope") == []
    assert await pick(field="temperature_c") == [
        ("node-1", "bme", "climate", 1),
        ("node-2", "bme", "other", 2),
        ("node-1", "bme", "climate", 3),
    ]
    assert await pick(field="mode") == [("node-1", "geiger-0", "geiger", 2)]
    assert await pick(field="cps", node_id="node-1") == [
        ("node-1", "geiger-0", "geiger", 0),
        ("node-1", "geiger-0", "geiger", 2),
    ]
    assert await pick(field="Bad Field") == []
    assert await pick(since_us=BASE + S, until_us=BASE + 3 * S) == everything[2:6]
    assert await pick(since_us=BASE + 3 * S) == everything[6:]
    assert await pick(until_us=BASE) == []
    assert await store.count_readings(ReadingFilter()) == 7
    assert await store.count_readings(ReadingFilter(node_id="node-1", field="temperature_c")) == 2
    assert await store.count_readings(ReadingFilter(node_id="ghost")) == 0


async def test_keyset_pages_have_no_gaps_or_repeats(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    # 40 readings on two sensors, many sharing a timestamp, written out of time order
    readings = []
    ts = []
    for i in range(40):
        node = "node-1" if i % 3 else "node-2"
        readings.append(reading(node, {"cps": i}, sensor_id=f"g{i % 2}"))
        ts.append(BASE + ((i * 7) % 10) * S)
    await store.write_readings([batch(readings[:20], ts[:20]), batch(readings[20:], ts[20:])])
    expected = await all_readings(store)
    assert len(expected) == 40
    assert [(r.ts_us, r.id) for r in expected] == sorted((r.ts_us, r.id) for r in expected)
    for size in (1, 3, 7, 40):
        seen: list[ReadingRow] = []
        after = None
        while True:
            page = await store.list_readings(ReadingFilter(), size, after)
            seen.extend(page)
            if len(page) < size:
                break
            after = (page[-1].ts_us, page[-1].id)
        assert [r.id for r in seen] == [r.id for r in expected]
    flt = ReadingFilter(node_id="node-1", field="cps")
    expected_one = await all_readings(store, flt)
    streamed = [r async for r in store.iter_readings(flt, chunk=4)]
    assert [r.id for r in streamed] == [r.id for r in expected_one]
    assert len(streamed) == await store.count_readings(flt) == 26
    assert [r.id async for r in store.iter_readings(ReadingFilter(), chunk=40)] == [
        r.id for r in expected
    ]
    assert await store.list_readings(ReadingFilter(), 0, None) == []


# -- series ---------------------------------------------------------------------------------------


async def test_series_buckets_and_aggregates(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    points = {4: 50, 10: 1, 20: 3, 70: 10, 130: 4, 135: 6, 180: 99, 200: 100}
    readings = [reading("node-1", {"cps": v, "cpm": v * 60}) for v in points.values()]
    other = reading("node-2", {"cps": 1000})  # another node's sensor of the same id
    await store.write_readings(
        [
            batch(readings, ts=[BASE + s * S for s in points]),
            batch([other], ts=[BASE + 10 * S]),
        ]
    )
    aggs = ("avg", "min", "max", "count", "sum")
    # since is not aligned: buckets still start at multiples of the bucket since the epoch
    query = SeriesQuery("node-1", "geiger-0", "cps", BASE + 5 * S, BASE + 180 * S, 60 * S, aggs, 10)
    assert await store.series(query) == [
        SeriesRow(BASE, {"avg": 2.0, "min": 1.0, "max": 3.0, "count": 2, "sum": 4.0}),
        SeriesRow(BASE + 60 * S, {"avg": 10.0, "min": 10.0, "max": 10.0, "count": 1, "sum": 10.0}),
        SeriesRow(BASE + 120 * S, {"avg": 5.0, "min": 4.0, "max": 6.0, "count": 2, "sum": 10.0}),
    ]
    only = dataclasses.replace(query, aggregates=("max", "count"))
    assert [r.values for r in await store.series(only)] == [
        {"max": 3.0, "count": 2},
        {"max": 10.0, "count": 1},
        {"max": 6.0, "count": 2},
    ]
    # paging: at most `limit` buckets, strictly after the cursor
    first = await store.series(dataclasses.replace(query, limit=2))
    assert [r.bucket_us for r in first] == [BASE, BASE + 60 * S]
    rest = await store.series(dataclasses.replace(query, after_bucket_us=first[-1].bucket_us))
    assert [r.bucket_us for r in rest] == [BASE + 120 * S]
    assert await store.series(dataclasses.replace(query, after_bucket_us=BASE + 120 * S)) == []
    # other bucket sizes; the other field; empty buckets are absent
    wide = SeriesQuery("node-1", "geiger-0", "cpm", BASE, BASE + 300 * S, 120 * S, ("sum",), 10)
    assert await store.series(wide) == [
        SeriesRow(BASE, {"sum": float((50 + 1 + 3 + 10) * 60)}),
        SeriesRow(BASE + 120 * S, {"sum": float((4 + 6 + 99 + 100) * 60)}),
    ]
    gap = SeriesQuery("node-1", "geiger-0", "cps", BASE, BASE + 300 * S, 30 * S, ("count",), 10)
    assert [((r.bucket_us - BASE) // S, r.values["count"]) for r in await store.series(gap)] == [
        (0, 3),
        (60, 1),
        (120, 2),
        (180, 2),  # 180 s and 200 s
    ]
    # unknown sensor, field or node; a non-fleet-wide sensor without a node
    for unknown in (
        dataclasses.replace(query, sensor_id="nope"),
        dataclasses.replace(query, field="nope"),
        dataclasses.replace(query, node_id="ghost"),
        dataclasses.replace(query, node_id=None),
        dataclasses.replace(query, until_us=query.since_us),
    ):
        assert await store.series(unknown) == []


async def test_series_of_a_sensor_id_shared_by_several_types(store: SqlStore) -> None:
    await nodes(store, "node-1")
    await store.write_readings(
        [
            batch(
                [
                    reading(
                        payload={"pressure_pa": 100000}, sensor_id="bme", sensor_type="climate"
                    ),
                    reading(payload={"load1": 0.5}, sensor_id="bme", sensor_type="system"),
                    reading(
                        payload={"pressure_pa": 100200}, sensor_id="bme", sensor_type="climate"
                    ),
                ],
                ts=[BASE, BASE + S, BASE + 2 * S],
            )
        ]
    )
    query = SeriesQuery("node-1", "bme", "pressure_pa", BASE, BASE + 60 * S, 60 * S, ("avg",), 5)
    assert await store.series(query) == [SeriesRow(BASE, {"avg": 100100.0})]
    load = dataclasses.replace(query, field="load1", aggregates=("count",))
    assert await store.series(load) == [SeriesRow(BASE, {"count": 1})]


# -- the connection ---------------------------------------------------------------------------------


async def test_ping_answers(store: SqlStore) -> None:
    latency = await store.ping()
    assert 0 <= latency < 5


async def test_concurrent_writers_store_each_reading_once(
    store: SqlStore, store_config: StoreConfig
) -> None:
    """Two stores on one database (two processes or replicas) racing on the same ids."""
    await nodes(store, "node-1")
    other = await open_store(store_config)
    try:
        rounds = []
        for k in range(5):
            readings = [reading(reading_id=f"r:{k * 20 + i}") for i in range(1, 31)]
            readings += [reading(reading_id=f"opaque-{k * 20 + i}") for i in range(30)]
            group = [batch(readings, ts=[BASE + i * S for i in range(60)])]
            rounds.append(asyncio.gather(store.write_readings(group), other.write_readings(group)))
        results = await asyncio.gather(*rounds)
    finally:
        await other.close()
    accepted = sum(o.accepted for pair in results for outs in pair for o in outs)
    assert accepted == await store.count_readings(ReadingFilter())
    assert accepted == 110 + 110  # r:1..r:110 and opaque-0..opaque-109
    assert await ranges_of_stream(store, "node-1", "r:") == [(1, 110)]


async def test_an_unmigrated_database_is_unavailable(tmp_path: Any) -> None:
    store = await open_store(StoreConfig(f"sqlite:///{tmp_path}/empty.db", query_timeout=2.0))
    try:
        with pytest.raises(StoreUnavailable):
            await store.get_node("node-1")
        with pytest.raises(StoreUnavailable):
            await store.write_readings([batch([reading()])])
    finally:
        await store.close()


@pytest.mark.postgres
async def test_an_unreachable_postgres_is_unavailable_within_the_connect_timeout() -> None:
    config = StoreConfig(
        "postgresql://postgres@127.0.0.1:1/none", connect_timeout=1.0, query_timeout=2.0
    )
    store = await open_store(config)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.list_nodes(10, None)
        with pytest.raises(StoreUnavailable):
            await store.write_readings([batch([reading()])])
        assert loop.time() - start < 10
    finally:
        await store.close()


async def test_a_locked_sqlite_database_times_out_as_unavailable(tmp_path: Any) -> None:
    from beamwarden.server.store import upgrade

    url = f"sqlite:///{tmp_path}/locked.db"
    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url, query_timeout=0.5))
    await nodes(store, "node-1")
    blocker = sqlite3.connect(sqlite_path(url), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(StoreUnavailable):
            await store.write_readings([batch([reading(reading_id="q:1")])])
        with pytest.raises(StoreUnavailable):
            await store.add_event(NewEvent(BASE, "x", "y"))
        assert loop.time() - start < 5
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # once the lock is gone the store works again, and nothing half-written remains
    assert await store.write_readings([batch([reading(reading_id="q:1")])]) == [BatchOutcome(1, 0)]
    await store.close()


def test_sqlite_is_in_wal_mode_after_open(tmp_path: Any) -> None:
    async def go() -> None:
        from beamwarden.server.store import upgrade

        url = f"sqlite:///{tmp_path}/sub/dir/wal.db"  # the folder is created
        await asyncio.to_thread(upgrade, url)
        store = await open_store(StoreConfig(url))
        await nodes(store, "node-1")
        await store.write_readings([batch([reading()])])
        await store.close()

    asyncio.run(go())
    con = sqlite3.connect(tmp_path / "sub" / "dir" / "wal.db")
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    con.close()


# -- small pure parts ---------------------------------------------------------------------------------


def test_normalise_url() -> None:
    assert normalise_url("postgresql://u@h:5432/db") == "postgresql+asyncpg://u@h:5432/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("sqlite:///./data/b.db") == "sqlite+aiosqlite:///./data/b.db"
    assert normalise_url("sqlite:////abs/b.db") == "sqlite+aiosqlite:////abs/b.db"
    assert normalise_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    for bad in ("mysql://h/db", "nonsense"):
        with pytest.raises(ValueError, match="URL"):
            normalise_url(bad)
    assert sqlite_path("sqlite:///./data/b.db") == "./data/b.db"
    assert sqlite_path("sqlite:////abs/b.db") == "/abs/b.db"
    with pytest.raises(ValueError, match="memory"):
        sqlite_path("sqlite:///:memory:")


def test_store_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        StoreConfig("sqlite:///x.db", sqlite_synchronous="SOMETIMES")
    with pytest.raises(ValueError, match="timeouts"):
        StoreConfig("sqlite:///x.db", query_timeout=0)
    with pytest.raises(ValueError, match="sqlite_cache_mib"):
        StoreConfig("sqlite:///x.db", sqlite_cache_mib=0)
    with pytest.raises(ValueError, match="sqlite_mmap_mib"):
        StoreConfig("sqlite:///x.db", sqlite_mmap_mib=-1)


@given(
    st.one_of(
        st.text(alphabet="ab:-0123456789", max_size=24),
        st.from_regex(r"[a-z]{1,5}[:-][0-9]{1,20}", fullmatch=True),
        st.text(max_size=30),
    )
)
def test_fast_stream_split_agrees_with_the_protocol(reading_id: str) -> None:
    expected = parse_stream_id(reading_id)
    assert stream_seq(reading_id) == (None if expected is None else tuple(expected))


async def test_sensor_table_shape(store: SqlStore) -> None:
    """Counting through SQLAlchemy works on both databases (used by the metrics collector)."""
    await nodes(store, "node-1")
    await store.write_readings([batch([reading(), reading(sensor_id="g2")])])
    assert (await table(store, select(func.count()).select_from(sensors)))[0][0] == 2


# -- the readings layout: one b-tree, ids, plans ------------------------------------------------------


async def test_readings_have_one_btree_ordered_by_sensor_time_id(store: SqlStore) -> None:
    """One b-tree in (sensor_ref, ts_us, id) order and nothing else: PostgreSQL's primary key;
    on SQLite the rowid table (id) and its covering index, which series queries use."""

    def shape(sync_conn: Any) -> tuple[list[str], list[Any]]:
        found = inspect(sync_conn)
        pk = found.get_pk_constraint("readings")["constrained_columns"]
        return pk, found.get_indexes("readings")

    async with store.engine.connect() as conn:
        pk, indexes = await conn.run_sync(shape)
        if store.dialect != "sqlite":
            assert pk == ["sensor_ref", "ts_us", "id"]
            assert indexes == []
            return
        assert pk == ["id"]  # the rowid: rows are appended in id order
        assert [(i["name"], i["column_names"]) for i in indexes] == [
            ("ix_readings_series", ["sensor_ref", "ts_us", "id", *(f"v{k}" for k in range(8))])
        ]
        objects = (
            await conn.execute(
                text("SELECT count(*) FROM sqlite_master WHERE tbl_name = 'readings'")
            )
        ).scalar_one()
        assert objects == 2  # the table and that index: no sqlite_autoindex_readings_*
        plan = (
            await conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT avg(v3), count(v3) FROM readings "
                    "WHERE sensor_ref = 1 AND ts_us >= 0 AND ts_us < 10 AND v3 IS NOT NULL"
                )
            )
        ).all()
        assert "COVERING INDEX ix_readings_series" in " ".join(str(row[-1]) for row in plan)


async def test_reading_ids_are_unique_across_stores_restarts_and_deletions(
    store: SqlStore, store_config: StoreConfig
) -> None:
    """Two writers on one database (two processes), a restart, readings deleted (a retention job):
    an id is never given twice. On SQLite they come from the ``sequences`` counter, not max(id)."""
    await nodes(store, "node-1")
    other = await open_store(store_config)
    try:
        groups = []
        for k in range(4):
            mine = [reading(payload={"cps": k}, sensor_id=f"g{k}") for _ in range(25)]
            theirs = [reading(payload={"cps": k}, sensor_id=f"h{k}") for _ in range(25)]
            groups.append(store.write_readings([batch(mine)]))
            groups.append(other.write_readings([batch(theirs)]))
        await asyncio.gather(*groups)
    finally:
        await other.close()
    first = [r.id for r in await all_readings(store)]
    assert len(first) == len(set(first)) == 200
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM readings"))  # the newest readings are gone too
    restarted = await open_store(store_config)
    try:
        await restarted.write_readings([batch([reading(), reading(sensor_id="g0")])])
        again = [r.id for r in await all_readings(restarted)]
    finally:
        await restarted.close()
    assert len(again) == 2
    assert min(again) > max(first)
    if store.dialect == "sqlite":
        rows = await table(store, select(sequences.c.name, sequences.c.value))
        assert rows == [("readings", max(again))]


async def test_duplicates_take_no_ids(store: SqlStore) -> None:
    await nodes(store, "node-1")
    await store.write_readings([batch([reading(reading_id="q:1"), reading(reading_id="q:2")])])
    await store.write_readings([batch([reading(reading_id="q:2"), reading(reading_id="q:3")])])
    ids = [r.id for r in await all_readings(store)]
    assert len(ids) == 3
    if store.dialect == "sqlite":
        assert ids == [1, 2, 3]


async def _plan(store: SqlStore, conn: Any, stmt: Any) -> str:
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if store.dialect == "sqlite":
        rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
        return "\n".join(str(r[-1]) for r in rows)
    # a tiny table: make the planner show how it would use the index on a big one
    await conn.execute(text("SET LOCAL enable_seqscan = off"))
    rows = await conn.execute(text(f"EXPLAIN {sql}"))
    return "\n".join(str(r[0]) for r in rows)


async def test_series_and_lists_are_range_scans_of_the_primary_key(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    readings = [reading(node, {"cps": i}) for i in range(50) for node in ("node-1", "node-2")]
    await store.write_readings([batch(readings, ts=[BASE + i * S for i in range(100)])])
    query = SeriesQuery(
        "node-1", "geiger-0", "cps", BASE, BASE + 100 * S, 60 * S, ("avg", "count"), 10
    )
    flt = ReadingFilter(node_id="node-1", sensor_id="geiger-0")
    async with store.engine.begin() as conn:
        built = await store.series_statement(conn, query, "node-1")
        assert built is not None
        series_plan = await _plan(store, conn, built.stmt)
        listing = await store.readings_statement(conn, flt, 10, (BASE + 10 * S, 5))
        list_plan = await _plan(store, conn, listing)
    if store.dialect == "sqlite":
        # the walk: the first bucket, the next one, each bucket's aggregates: three key ranges
        scans = [line for line in series_plan.splitlines() if "readings" in line]
        # (all three read only the covering index, never a row)
        index = "USING COVERING INDEX ix_readings_series"
        assert scans == [f"SEARCH readings {index} (sensor_ref=? AND ts_us>? AND ts_us<?)"] * 3
        assert "TEMP B-TREE" not in series_plan
        assert "USING INDEX ix_readings_series (sensor_ref=? AND ts_us>?)" in list_plan
        assert "TEMP B-TREE FOR ORDER BY" not in list_plan  # the index's own order
    else:
        # (plain EXPLAIN leaves the recursive term's subplan out: two of the three are shown)
        # (readings is partitioned by day: each partition's primary key is its own index)
        key = re.compile(r"Index Scan using (pk_readings|readings_\w+_pkey) on readings")
        scans = [line for line in series_plan.splitlines() if " on readings" in line]
        assert len(scans) >= 2, series_plan
        assert all(key.search(line) for line in scans), series_plan
        assert series_plan.count("Index Cond: ((sensor_ref = ") == len(scans)
        assert "Seq Scan" not in series_plan
        assert "Sort" not in series_plan
        assert key.search(list_plan), list_plan
        assert "Sort" not in list_plan


async def test_series_numbers_come_back_exactly(store: SqlStore) -> None:
    """Extreme doubles survive the series' aggregates bit for bit (SQLite's walk packs them as
    text: 17 digits are not always enough there)."""
    await nodes(store, "node-1")
    hard = [
        1.0627297642918568e297,
        -1.423084172170799e203,
        1.7976931348623157e308,
        5e-324,
        -2.2250738585072014e-308,
        0.1 + 0.2,
        23.294999999999995,
        -0.0,
        1e16 + 2,
    ]
    readings = [reading(payload={"x": x}) for x in hard]
    await store.write_readings([batch(readings, ts=[BASE + i * 60 * S for i in range(len(hard))])])
    query = SeriesQuery(
        "node-1", "geiger-0", "x", BASE, BASE + DAY, 60 * S, ("min", "max", "sum", "count"), 100
    )
    rows = await store.series(query)
    assert [r.values for r in rows] == [{"min": x, "max": x, "sum": x, "count": 1} for x in hard]
    both = dataclasses.replace(query, bucket_us=DAY, aggregates=("min", "max", "count"))
    assert [r.values for r in await store.series(both)] == [
        {"min": min(hard), "max": max(hard), "count": len(hard)}
    ]


async def test_series_walks_past_long_empty_stretches_and_stops_at_the_limit(
    store: SqlStore,
) -> None:
    await nodes(store, "node-1")
    year = 365 * DAY
    ts = [BASE, BASE + 10 * S, BASE + year // 2, BASE + year - S]
    payloads = [{"cps": 1}, {"cps": 3}, {"mode": "x"}, {"cps": 7}]  # a bucket without the field
    await store.write_readings([batch([reading(payload=p) for p in payloads], ts=ts)])
    query = SeriesQuery("node-1", "geiger-0", "cps", BASE, BASE + year, 60 * S, ("avg",), 10)
    assert await store.series(query) == [
        SeriesRow(BASE, {"avg": 2.0}),
        SeriesRow(BASE + year - 60 * S, {"avg": 7.0}),
    ]
    assert await store.series(dataclasses.replace(query, limit=1)) == [
        SeriesRow(BASE, {"avg": 2.0})
    ]
    # a since inside a bucket: the bucket starts at its multiple, only readings from since count
    late = dataclasses.replace(query, since_us=BASE + 5 * S, aggregates=("count",))
    assert (await store.series(late))[0] == SeriesRow(BASE, {"count": 1})


async def test_missing_values_are_stored_as_null(store: SqlStore) -> None:
    """No relay, no reading id, empty value slots: NULL in the table (the SQLite writer binds
    marks instead of None and its SQL, or SQLite itself for a NaN double, turns them into NULL)."""
    await nodes(store, "node-1", "hub")
    await store.write_readings(
        [
            batch([reading(payload={"a": 1.5, "b": 2, "big": 10**400, "t": "x"})]),
            batch([reading("node-1", {"a": 0.0}, reading_id="q:1")], source="hub"),
        ]
    )
    r = readings_table.c
    rows = await table(
        store,
        select(
            r.source_ref.is_(None),
            r.reading_id.is_(None),
            r.v0,
            r.v1,
            *(r[f"v{slot}"].is_(None) for slot in range(2, 8)),
        ).order_by(r.id),
    )
    assert [tuple(row) for row in rows] == [
        (True, True, 1.5, 2.0, *[True] * 6),  # "big" has a slot, but only the payload holds it
        (False, False, 0.0, None, *[True] * 6),
    ]
