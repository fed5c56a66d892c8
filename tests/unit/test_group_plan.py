"""The readings hot path's plan (``store.ingest.GroupPlan``, issue 2): which reading ids it files
under which stream and sequence number, and which as opaque, must be exactly the protocol's rule
(``parse_stream_id``) however the ids come, in runs of one stream or mixed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from beamwarden.protocol import Reading, parse_stream_id
from beamwarden.server.records import ReadingBatch
from beamwarden.server.store.ingest import GroupPlan, IngestCache, SensorEntry

IDS = st.one_of(
    st.text(alphabet="ab:-0123456789", min_size=1, max_size=24),
    st.from_regex(r"[a-z]{1,3}[:-][0-9]{1,20}", fullmatch=True),
    st.text(min_size=1, max_size=30),
)


@given(st.lists(st.tuples(st.integers(0, 1), IDS, st.integers(0, 3)), min_size=1, max_size=40))
def test_the_plan_files_reading_ids_by_the_protocols_rule(
    items: list[tuple[int, str, int]],
) -> None:
    # a run: the same stream's next numbers in a row (what the fast path looks for)
    ids: list[tuple[str, str]] = []
    for node, rid, repeat in items:
        ids.append((f"node-{node}", rid))
        parsed = parse_stream_id(rid)
        if parsed is not None:
            stream, seq = parsed
            ids.extend((f"node-{node}", f"{stream}{seq + k}") for k in range(1, repeat + 1))
    cache = IngestCache()
    cache.nodes.update({"node-0": 1, "node-1": 2})
    for n in ("node-0", "node-1"):
        cache.sensors[(n, "t", "climate")] = SensorEntry(1, {"temperature_c": 0})
    readings = [Reading(n, "t", "climate", {"temperature_c": 1.0}, None, rid) for n, rid in ids]
    plan = GroupPlan([ReadingBatch("node-0", 0, readings, [0] * len(ids), [0] * len(ids))], cache)
    want_streams: dict[tuple[str, str], list[tuple[int, int]]] = {}
    want_opaque: dict[str, list[tuple[str, int]]] = {}
    for index, (node, rid) in enumerate(ids):
        parsed = parse_stream_id(rid)
        if parsed is None:
            want_opaque.setdefault(node, []).append((rid, index))
        else:
            want_streams.setdefault((node, parsed[0]), []).append((parsed[1], index))
    assert plan.streams == want_streams
    assert plan.opaque == want_opaque
