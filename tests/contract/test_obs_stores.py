"""Contract suite of the obs stores: every store (memory, ring buffer, SQLite) behaves the same.

See :mod:`beamwarden.obs.store` for the contract. The ring buffer runs with bounds far above what
these tests write, so it must behave exactly like the others here (its bounds have unit tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beamwarden.obs import (
    HistogramValue,
    Level,
    LogQuery,
    LogRecord,
    MemoryStore,
    MetricKind,
    MetricSample,
    ObsStore,
    RingBufferStore,
    SampleQuery,
    SqliteStore,
    StoreClosed,
    new_log_record,
    new_sample,
)

T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "ring", "sqlite"])
def obs_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObsStore]:
    store: ObsStore
    if request.param == "memory":
        store = MemoryStore()
    elif request.param == "ring":
        store = RingBufferStore(max_logs=10**6, max_log_bytes=10**9, max_samples=10**6)
    else:
        store = SqliteStore(tmp_path / "obs.db")
    yield store
    store.close()


def rec(ts: float, level: Level = Level.INFO, message: str = "m", **attrs: object) -> LogRecord:
    return new_log_record(level, message, ts=T0 + ts, logger="app", attrs=attrs)


def sample(ts: float, name: str = "jobs_total", value: float = 1.0, **labels: str) -> MetricSample:
    return new_sample(name, MetricKind.COUNTER, value, ts=T0 + ts, labels=labels)


def test_the_store_satisfies_the_protocol(obs_store: ObsStore) -> None:
    assert isinstance(obs_store, ObsStore)
    assert obs_store.kind in {"memory", "ring", "sqlite"}


def test_logs_come_back_whole_with_growing_ids_in_order(obs_store: ObsStore) -> None:
    records = [
        rec(0, Level.INFO, "first", user="bob", n=3, nested={"a": [1, 2.5, None, True]}),
        rec(1, Level.ERROR, "second: ünïcødé ✓"),
        rec(0.5, Level.DEBUG, "third, older than the second"),
    ]
    obs_store.append_logs(records)
    got = obs_store.read_logs(LogQuery())
    assert got == [
        r._replace(id=i) for i, r in zip([got[0].id, got[1].id, got[2].id], records, strict=True)
    ]
    assert got[0].id < got[1].id < got[2].id
    assert got[0].attrs == {"user": "bob", "n": 3, "nested": {"a": [1, 2.5, None, True]}}
    assert obs_store.stats().logs == 3


def test_logs_filter_by_since_level_cursor_and_limit(obs_store: ObsStore) -> None:
    levels = [Level.DEBUG, Level.INFO, Level.WARNING, Level.ERROR, Level.CRITICAL]
    obs_store.append_logs([rec(i, levels[i % 5], f"r{i}") for i in range(50)])
    everything = obs_store.read_logs(LogQuery(limit=1000))
    ids = [r.id for r in everything]
    assert [r.message for r in obs_store.read_logs(LogQuery(since=T0 + 45))] == [
        f"r{i}" for i in range(45, 50)
    ]
    warn = obs_store.read_logs(LogQuery(min_level=Level.WARNING, limit=1000))
    assert {r.level for r in warn} == {Level.WARNING, Level.ERROR, Level.CRITICAL}
    assert len(warn) == 30
    page = obs_store.read_logs(LogQuery(after_id=ids[9], limit=5))
    assert [r.id for r in page] == ids[10:15]
    combined = obs_store.read_logs(
        LogQuery(since=T0 + 20, min_level=Level.ERROR, after_id=ids[30], limit=3)
    )
    assert [r.message for r in combined] == ["r33", "r34", "r38"]
    assert obs_store.read_logs(LogQuery(since=T0 + 1000)) == []
    assert obs_store.read_logs(LogQuery(after_id=ids[-1])) == []


def test_since_is_by_timestamp_even_when_timestamps_are_out_of_order(obs_store: ObsStore) -> None:
    obs_store.append_logs(
        [rec(10, message="late"), rec(1, message="early"), rec(11, message="later")]
    )
    assert [r.message for r in obs_store.read_logs(LogQuery(since=T0 + 5))] == ["late", "later"]
    assert [r.message for r in obs_store.read_logs(LogQuery(since=T0))] == [
        "late",
        "early",
        "later",
    ]


def test_paging_by_cursor_visits_everything_once(obs_store: ObsStore) -> None:
    obs_store.append_logs([rec(i * 0.01, message=str(i)) for i in range(5000)])
    seen: list[str] = []
    after = 0
    while True:
        page = obs_store.read_logs(LogQuery(since=T0 + 10, after_id=after, limit=333))
        if not page:
            break
        seen += [r.message for r in page]
        after = page[-1].id
    assert seen == [str(i) for i in range(1000, 5000)]


def test_ids_keep_growing_after_everything_is_deleted(obs_store: ObsStore) -> None:
    obs_store.append_logs([rec(0), rec(1)])
    last = obs_store.read_logs(LogQuery())[-1].id
    assert obs_store.delete_logs(T0 + 100) == 2
    obs_store.append_logs([rec(2)])
    (again,) = obs_store.read_logs(LogQuery())
    assert again.id > last


def test_delete_logs_by_age_and_level(obs_store: ObsStore) -> None:
    obs_store.append_logs(
        [
            rec(0, Level.DEBUG, "old debug"),
            rec(0, Level.ERROR, "old error"),
            rec(10, Level.DEBUG, "new debug"),
        ]
    )
    assert obs_store.delete_logs(T0 + 5, levels={Level.DEBUG}) == 1
    assert [r.message for r in obs_store.read_logs(LogQuery())] == ["old error", "new debug"]
    assert obs_store.delete_logs(T0 + 5, levels=set()) == 0
    assert obs_store.delete_logs(T0 + 5) == 1
    assert [r.message for r in obs_store.read_logs(LogQuery())] == ["new debug"]
    assert obs_store.stats().logs == 1


def test_trim_logs_keeps_the_newest(obs_store: ObsStore) -> None:
    obs_store.append_logs([rec(i, message=str(i)) for i in range(10)])
    assert obs_store.trim_logs(3) == 7
    assert [r.message for r in obs_store.read_logs(LogQuery())] == ["7", "8", "9"]
    assert obs_store.trim_logs(3) == 0
    assert obs_store.trim_logs(0) == 3
    assert obs_store.read_logs(LogQuery()) == []


def test_samples_history_and_last_values(obs_store: ObsStore) -> None:
    hist = HistogramValue((0.1, 1.0), (1, 3, 4), 2.5)
    obs_store.append_samples(
        [
            sample(0, value=1, route="/a"),
            sample(1, value=2, route="/b"),
            sample(2, value=5, route="/a"),
            new_sample("latency_seconds", "histogram", hist, ts=T0 + 3),
            new_sample(
                "temperature", "gauge", -3.5, ts=T0 + 4, labels={"room": "lab", "floor": "1"}
            ),
        ]
    )
    history = obs_store.read_samples(SampleQuery())
    assert [(s.name, s.value) for s in history] == [
        ("jobs_total", 1.0),
        ("jobs_total", 2.0),
        ("jobs_total", 5.0),
        ("latency_seconds", hist),
        ("temperature", -3.5),
    ]
    assert history[4].labels == (("floor", "1"), ("room", "lab"))
    assert [s.value for s in obs_store.read_samples(SampleQuery(since=T0 + 1.5))] == [
        5.0,
        hist,
        -3.5,
    ]
    assert [
        s.value
        for s in obs_store.read_samples(SampleQuery(name="jobs_total", after_id=history[0].id))
    ] == [2.0, 5.0]
    latest = {(s.name, s.labels): (s.kind, s.value, s.ts) for s in obs_store.latest_samples()}
    assert latest == {
        ("jobs_total", (("route", "/a"),)): (MetricKind.COUNTER, 5.0, T0 + 2),
        ("jobs_total", (("route", "/b"),)): (MetricKind.COUNTER, 2.0, T0 + 1),
        ("latency_seconds", ()): (MetricKind.HISTOGRAM, hist, T0 + 3),
        ("temperature", (("floor", "1"), ("room", "lab"))): (MetricKind.GAUGE, -3.5, T0 + 4),
    }
    assert obs_store.stats().samples == 5
    assert obs_store.stats().series == 4


def test_last_value_is_the_newest_by_time_not_by_arrival(obs_store: ObsStore) -> None:
    obs_store.append_samples([sample(5, value=10)])
    obs_store.append_samples([sample(1, value=3)])  # a late, older sample
    obs_store.append_samples([sample(5, value=11), sample(5, value=12)])  # ties: the last one
    (latest,) = obs_store.latest_samples()
    assert latest.value == 12.0


def test_sample_retention_keeps_the_last_values(obs_store: ObsStore) -> None:
    obs_store.append_samples([sample(i, value=i) for i in range(10)])
    assert obs_store.delete_samples(T0 + 4) == 4
    assert obs_store.trim_samples(2) == 4
    assert [s.value for s in obs_store.read_samples(SampleQuery())] == [8.0, 9.0]
    assert [s.value for s in obs_store.latest_samples()] == [9.0]
    assert obs_store.delete_samples(T0 + 100) == 2
    assert [s.value for s in obs_store.latest_samples()] == [9.0]


def test_close_is_idempotent_and_final(obs_store: ObsStore) -> None:
    obs_store.close()
    obs_store.close()
    if obs_store.kind == "sqlite":
        with pytest.raises(StoreClosed):
            obs_store.append_logs([rec(0)])


def test_text_that_no_encoder_accepts_is_stored_repaired(obs_store: ObsStore) -> None:
    bad = LogRecord(T0, Level.INFO, "lone \udc80 surrogate", "app", {"k": "v\ud800"})
    obs_store.append_logs([bad, rec(1, message="fine")])
    got = obs_store.read_logs(LogQuery())
    assert [r.message for r in got] == ["lone ? surrogate", "fine"]
    assert got[0].attrs == {"k": "v?"}


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
attrs_strategy = st.dictionaries(
    st.text(max_size=10),
    st.recursive(
        json_scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    max_size=4,
)


@settings(
    max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    message=st.text(max_size=200),
    attrs=attrs_strategy,
    level=st.sampled_from(list(Level)),
    ts=st.floats(0, 4e9),
)
def test_any_valid_record_round_trips(
    obs_store: ObsStore, message: str, attrs: dict[str, object], level: Level, ts: float
) -> None:
    try:
        record = new_log_record(level, message, ts=ts, logger="x", attrs=attrs)
    except ValueError:
        return  # surrogates in generated text: not a valid record
    obs_store.append_logs([record])
    got = obs_store.read_logs(LogQuery(after_id=0, limit=10**6))[-1]
    assert got._replace(id=0) == record


def test_a_sample_that_cannot_be_encoded_does_not_take_its_batch_with_it(
    obs_store: ObsStore,
) -> None:
    bad = MetricSample(T0, "jobs_total", MetricKind.COUNTER, (("k", "bad \udc80"),), 1.0)
    obs_store.append_samples([sample(0, value=1), bad, sample(1, value=2)])
    values = [s.value for s in obs_store.read_samples(SampleQuery()) if s.labels == ()]
    assert values == [1.0, 2.0]
