"""The store contract for the dashboard's reads (``store/overview.py``), on every adapter: a
node's heartbeat metric in buckets, its heartbeat times, its newest metrics, each sensor's newest
reading. Expected values are worked out by hand."""

from __future__ import annotations

from beamwarden.server.records import SensorLatest, SeriesRow, TelemetryQuery
from beamwarden.server.store import SqlStore
from tests.contract.test_store import BASE, S, batch, heartbeat, nodes, reading

MIN = 60 * S


def query(**changes: object) -> TelemetryQuery:
    fields: dict[str, object] = {
        "node_id": "node-1",
        "metric": "cpu_percent",
        "since_us": BASE,
        "until_us": BASE + 3 * MIN,
        "bucket_us": MIN,
        "aggregates": ("avg", "min", "max", "count"),
        "limit": 100,
    }
    fields.update(changes)
    return TelemetryQuery(**fields)  # type: ignore[arg-type]


async def beats(store: SqlStore) -> None:
    """node-1: cpu 10, 20 in minute 0; nothing in minute 1; 40 and a non-number in minute 2."""
    await nodes(store, "node-1", "node-2")
    await store.write_heartbeats(
        [
            heartbeat("node-1", BASE + 0 * S, metrics={"cpu_percent": 10, "push_ok": True}),
            heartbeat("node-1", BASE + 30 * S, metrics={"cpu_percent": 20.5}),
            heartbeat("node-1", BASE + 90 * S, metrics={"queue_depth": 3}),
            heartbeat("node-1", BASE + 130 * S, metrics={"cpu_percent": 40}),
            heartbeat("node-1", BASE + 150 * S, metrics={"cpu_percent": True}),  # not a number
            heartbeat("node-2", BASE + 10 * S, metrics={"cpu_percent": 99}),
            heartbeat("node-1", BASE + 200 * S, metrics={"cpu_percent": 70}),  # after until
        ]
    )


async def test_telemetry_series_buckets_one_metric_of_one_node(store: SqlStore) -> None:
    await beats(store)
    rows = await store.telemetry_series(query())
    assert rows == [
        SeriesRow(BASE, {"avg": 15.25, "min": 10.0, "max": 20.5, "count": 2}),
        SeriesRow(BASE + 2 * MIN, {"avg": 40.0, "min": 40.0, "max": 40.0, "count": 1}),
    ]
    # buckets are aligned to the epoch, not to since; limit counts buckets
    shifted = await store.telemetry_series(query(since_us=BASE + 20 * S, limit=1))
    assert shifted == [SeriesRow(BASE, {"avg": 20.5, "min": 20.5, "max": 20.5, "count": 1})]
    depth = await store.telemetry_series(query(metric="queue_depth", aggregates=("max",)))
    assert depth == [SeriesRow(BASE + MIN, {"max": 3.0})]


async def test_telemetry_series_of_nothing_is_empty(store: SqlStore) -> None:
    await beats(store)
    assert await store.telemetry_series(query(node_id="ghost")) == []
    assert await store.telemetry_series(query(metric="no_such_metric")) == []
    assert await store.telemetry_series(query(metric="bad name")) == []
    assert await store.telemetry_series(query(since_us=BASE + 3 * MIN)) == []
    assert await store.telemetry_series(query(aggregates=("median",))) == []


async def test_heartbeat_times_and_latest_metrics(store: SqlStore) -> None:
    await beats(store)
    times = await store.heartbeat_times("node-1", BASE, BASE + 3 * MIN, 100)
    assert times == [BASE, BASE + 30 * S, BASE + 90 * S, BASE + 130 * S, BASE + 150 * S]
    newest_two = await store.heartbeat_times("node-1", BASE, BASE + 3 * MIN, 2)
    assert newest_two == [BASE + 130 * S, BASE + 150 * S]
    assert await store.heartbeat_times("ghost", BASE, BASE + MIN, 10) == []
    assert await store.latest_metrics_of("node-1") == {"cpu_percent": 70}
    assert await store.latest_metrics_of("ghost") is None
    await nodes(store, "node-3")
    assert await store.latest_metrics_of("node-3") is None


async def test_sensors_latest_gives_each_sensors_newest_reading(store: SqlStore) -> None:
    await nodes(store, "node-1", "node-2")
    await store.write_readings(
        [
            batch(
                [
                    reading(payload={"cps": 3}),
                    reading(payload={"cps": 5, "usv_per_hour": 0.1}),
                    reading(
                        payload={"temperature_c": 21.5, "humidity_pct": 40},
                        sensor_id="ble:A4C138123456",
                        sensor_type="govee_h5075",
                    ),
                ],
                ts=[BASE, BASE + 2 * S, BASE + S],
            ),
            batch(
                [
                    reading("node-2", payload={"cps": 7}),
                    reading(
                        "node-2",
                        payload={"temperature_c": 22.0, "humidity_pct": 41},
                        sensor_id="ble:A4C138123456",
                        sensor_type="govee_h5075",
                    ),
                ],
                ts=[BASE, BASE + 5 * S],
            ),
        ]
    )
    mine = await store.sensors_latest("node-1", 10)
    assert mine == [
        SensorLatest(
            owner="node-1",
            sensor_id="geiger-0",
            sensor_type="geiger",
            fields=("cps", "usv_per_hour"),
            ts_us=BASE + 2 * S,
            payload={"cps": 5, "usv_per_hour": 0.1},
            node_id="node-1",
        )
    ]
    fleet_wide = await store.sensors_latest("", 10)
    assert fleet_wide == [
        SensorLatest(
            owner="",
            sensor_id="ble:A4C138123456",
            sensor_type="govee_h5075",
            fields=("temperature_c", "humidity_pct"),
            ts_us=BASE + 5 * S,
            payload={"temperature_c": 22.0, "humidity_pct": 41},
            node_id="node-2",  # the gateway that heard it last
        )
    ]
    every = await store.sensors_latest(None, 10)
    assert [(x.owner, x.sensor_id) for x in every] == [
        ("", "ble:A4C138123456"),
        ("node-1", "geiger-0"),
        ("node-2", "geiger-0"),
    ]
    assert len(await store.sensors_latest(None, 2)) == 2
    assert await store.sensors_latest("ghost", 10) == []
