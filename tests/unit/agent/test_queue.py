"""The durable queue: ids never reused, bounds drop the oldest (counted), rows leave only when
acknowledged or dead-lettered, and everything survives a reopen."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamwarden.agent.errors import QueueError
from beamwarden.agent.queue import QueueStats, ReadingQueue
from beamwarden.protocol import parse_stream_id


def body(n: int, pad: int = 0) -> bytes:
    return json.dumps({"sensor_type": "sim", "payload": {"n": n, "pad": "x" * pad}}).encode()


def test_a_new_queue_has_a_stream_id_that_survives_reopening(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    stream = queue.stream
    queue.close()
    again = ReadingQueue(tmp_path / "q.sqlite3")
    assert again.stream == stream
    assert len(stream) == 16
    assert ReadingQueue(tmp_path / "other.sqlite3").stream != stream


def test_the_pragmas_make_every_commit_durable(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    assert queue._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert queue._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_sequence_numbers_are_never_reused_even_after_the_newest_rows_left(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = ReadingQueue(path)
    assert list(queue.put_many([body(1), body(2), body(3)], 100.0)) == [1, 2, 3]
    assert queue.ack([2, 3]) == 2
    queue.close()
    queue = ReadingQueue(path)
    assert list(queue.put_many([body(4)], 101.0)) == [4]  # a plain rowid would give 2 again
    ids = [queue.reading_id(item.seq) for item in queue.peek(10)]
    assert ids == [f"{queue.stream}:1", f"{queue.stream}:4"]
    assert parse_stream_id(ids[1]) == (f"{queue.stream}:", 4)


def test_wire_items_are_the_reading_with_its_id(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    queue.put_many([body(7)], 100.0)
    (item,) = queue.peek(1)
    assert json.loads(queue.wire_item(item)) == {
        "sensor_type": "sim",
        "payload": {"n": 7, "pad": ""},
        "reading_id": f"{queue.stream}:1",
    }


def test_peek_windows_and_ack(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    queue.put_many([body(n) for n in range(10)], 100.0)
    assert [i.seq for i in queue.peek(3)] == [1, 2, 3]
    assert [i.seq for i in queue.peek(3, after=8)] == [9, 10]
    assert [i.seq for i in queue.peek(10, after=2, upto=5)] == [3, 4, 5]
    assert queue.peek(0) == []
    assert queue.ack([1, 2, 3, 7]) == 4
    assert queue.ack([1, 2]) == 0  # already gone: nothing happens
    assert [i.seq for i in queue.peek(10)] == [4, 5, 6, 8, 9, 10]
    assert queue.depth == 6


def test_the_row_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = ReadingQueue(path, max_rows=5)
    queue.put_many([body(n) for n in range(4)], 100.0)
    queue.put_many([body(n) for n in range(4, 7)], 101.0)
    assert queue.last_put_dropped == 2
    assert [json.loads(i.body)["payload"]["n"] for i in queue.peek(10)] == [2, 3, 4, 5, 6]
    queue.close()
    stats = ReadingQueue(path, max_rows=5).stats()
    assert stats.dropped_rows == 2
    assert stats.rows == 5


def test_a_put_larger_than_the_whole_queue_keeps_its_newest(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3", max_rows=3)
    queue.put_many([body(0)], 100.0)
    queue.put_many([body(n) for n in range(1, 6)], 100.0)
    assert [json.loads(i.body)["payload"]["n"] for i in queue.peek(10)] == [3, 4, 5]
    assert queue.stats().dropped_rows == 3


def test_the_byte_bound_drops_the_oldest_and_counts_bytes(tmp_path: Path) -> None:
    one = len(body(0, pad=1000))
    queue = ReadingQueue(tmp_path / "q.sqlite3", max_bytes=3 * one + 10)
    queue.put_many([body(n, pad=1000) for n in range(3)], 100.0)
    assert queue.last_put_dropped == 0
    queue.put_many([body(3, pad=1000)], 100.0)
    stats = queue.stats()
    assert (stats.rows, stats.bytes, stats.dropped_rows, stats.dropped_bytes) == (
        3,
        3 * one,
        1,
        one,
    )


def test_dead_letters_keep_the_reading_and_the_reason(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    queue.put_many([body(n) for n in range(3)], 100.0)
    assert queue.dead_letter({2: "payload.n: must be a number"}, 200.0) == 1
    (letter,) = queue.dead_letters()
    assert (letter.reading_id, letter.enqueued_at, letter.failed_at, letter.error) == (
        f"{queue.stream}:2",
        100.0,
        200.0,
        "payload.n: must be a number",
    )
    assert json.loads(letter.body)["payload"]["n"] == 1
    assert [i.seq for i in queue.peek(10)] == [1, 3]


def test_stats_say_everything(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3", max_rows=3)
    queue.put_many([body(n) for n in range(4)], 100.0)  # seqs 1-3 hold n = 1, 2, 3
    queue.put_many([body(9)], 105.0)  # seq 4; seq 1 dropped
    queue.ack([3])
    queue.dead_letter({4: "bad"}, 110.0)
    assert queue.stats() == QueueStats(
        stream=queue.stream,
        rows=1,
        bytes=len(body(2)),
        oldest_enqueued_at=100.0,
        last_seq=4,
        dropped_rows=2,
        dropped_bytes=2 * len(body(0)),
        dead_letters=1,
        acked_total=1,
    )
    assert queue.oldest_enqueued_at() == 100.0
    assert queue.counters() == (2, 1)


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (x)")
    with pytest.raises(QueueError, match="not a pi-log queue"):
        ReadingQueue(path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"this is not a database, just some bytes " * 100)
    with pytest.raises(QueueError, match="cannot be opened"):
        ReadingQueue(path)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(1, 7), st.integers(0, 300)),
        st.tuples(st.just("ack"), st.integers(0, 5), st.integers(0, 0)),
        st.tuples(st.just("reopen"), st.integers(0, 0), st.integers(0, 0)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=ops)
def test_the_queue_matches_a_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, int]]
) -> None:
    """Against a plain model: contents, counters and bounds hold whatever the order of operations."""
    path = tmp_path_factory.mktemp("model") / "q.sqlite3"
    max_rows, max_bytes = 12, 3000
    queue = ReadingQueue(path, max_rows=max_rows, max_bytes=max_bytes)
    model: dict[int, bytes] = {}
    next_seq, dropped = 1, 0
    for op, a, b in ops:
        if op == "put":
            bodies = [body(next_seq + i, pad=b) for i in range(a)]
            seqs = list(queue.put_many(bodies, 1.0))
            assert seqs == list(range(next_seq, next_seq + a))
            model.update(zip(seqs, bodies, strict=True))
            next_seq += a
            while len(model) > max_rows or sum(map(len, model.values())) > max_bytes:
                del model[min(model)]
                dropped += 1
        elif op == "ack":
            victims = sorted(model)[:a]
            assert queue.ack(victims) == len(victims)
            for seq in victims:
                del model[seq]
        else:
            queue.close()
            queue = ReadingQueue(path, max_rows=max_rows, max_bytes=max_bytes)
        assert {i.seq: i.body for i in queue.peek(1000)} == model
        stats = queue.stats()
        assert (stats.rows, stats.bytes, stats.dropped_rows) == (
            len(model),
            sum(map(len, model.values())),
            dropped,
        )
        assert (queue.depth, queue.size_bytes) == (stats.rows, stats.bytes)
    queue.close()
