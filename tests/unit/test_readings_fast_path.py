"""The lean path of decode_readings never disagrees with the full normalisation: for any item it
either declines (None) or returns exactly what normalise returns, and normalise accepts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from beamwarden.protocol.readings import WireReading, _fast, normalise

names = st.sampled_from(
    [
        "temperature_c",
        "humidity_pct",
        "pressure_pa",
        "cps",
        "mode",
        "Temp",
        "x" * 65,
        "a b",
        "rssi_dbm",
        "note",
    ]
)
values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=300),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
idents = st.sampled_from(
    ["node-1", "climate", "geiger", "system", "misc", "Bad", "", "a" * 65, "x.y_z"]
)
sensor_ids = st.one_of(
    st.none(), st.sampled_from(["bme280@0x76", "ble:A4C1", "bad id", "", "s" * 129])
)
reading_ids = st.one_of(
    st.none(), st.sampled_from(["q:1", "", "a b", "é", "x" * 129, "ok-7", "\t"])
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-14))])
times = st.one_of(
    st.none(),
    st.builds(
        lambda d, z: d.replace(tzinfo=z),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        zones,
    ),
)


@st.composite
def wire(draw: Any) -> WireReading:
    fields: dict[str, Any] = {
        "payload": draw(st.one_of(st.none(), st.dictionaries(names, values, max_size=4))),
        "sensor_type": draw(st.one_of(st.none(), idents)),
        "node_id": draw(st.one_of(st.none(), idents)),
        "device_id": draw(st.one_of(st.none(), idents)),
        "sensor_id": draw(sensor_ids),
        "reading_id": draw(reading_ids),
        "timestamp": draw(times),
    }
    if draw(st.booleans()):
        fields["cps"] = 1.0
    return WireReading(**fields)


@settings(max_examples=1500, deadline=None)
@given(w=wire(), default=st.one_of(st.none(), st.just("node-1")))
def test_the_fast_path_agrees_with_normalise(w: WireReading, default: str | None) -> None:
    fast = _fast(w, default)
    issues: list[Any] = []
    full = normalise(w, 0, default, issues)
    if fast is not None:
        assert issues == []
        assert full is not None
        assert msgspec.structs.asdict(fast) == msgspec.structs.asdict(full)


def test_the_fast_path_takes_the_common_case() -> None:
    w = WireReading(
        node_id="node-1",
        sensor_type="climate",
        payload={"temperature_c": 21.5, "humidity_pct": 40},
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        reading_id="q:1",
    )
    assert _fast(w, None) is not None


def test_the_caches_of_valid_names_stay_bounded(monkeypatch: Any) -> None:
    from beamwarden.protocol import readings
    from beamwarden.protocol.vocabulary import FIELD_NAME_RE

    cache: set[str] = set()
    monkeypatch.setattr(readings, "_SEEN_MAX", 3)
    for name in ("a", "b", "c", "d"):
        assert readings._seen(cache, FIELD_NAME_RE, name)
    assert cache == {"d"}
    assert not readings._seen(cache, FIELD_NAME_RE, "Bad")
    assert "Bad" not in cache
