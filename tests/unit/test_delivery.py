"""Unit tests of ``protocol.delivery``: reading ids and per-stream sequence ranges."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamwarden.protocol import StreamSeq, covered, merge_ranges, parse_stream_id, ranges_of

# --------------------------------------------------------------------------------------------
# parse_stream_id
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading_id", "expected"),
    [
        ("q:1", StreamSeq("q:", 1)),
        ("q-1", StreamSeq("q-", 1)),
        ("q:0", StreamSeq("q:", 0)),
        ("beamrider-0001.q:1042", StreamSeq("beamrider-0001.q:", 1042)),
        ("host:queue:12", StreamSeq("host:queue:", 12)),
        ("a-b:7", StreamSeq("a-b:", 7)),
        ("a:1-2", StreamSeq("a:1-", 2)),
        ("a:-5", StreamSeq("a:-", 5)),
        ("::5", StreamSeq("::", 5)),
        ("q:" + "9" * 18, StreamSeq("q:", 10**18 - 1)),
        (
            "550e8400-e29b-41d4-a716-446655440000",
            StreamSeq("550e8400-e29b-41d4-a716-", 446655440000),
        ),
    ],
)
def test_stream_ids(reading_id: str, expected: StreamSeq) -> None:
    got = parse_stream_id(reading_id)
    assert got == expected
    assert got is not None
    assert (got.stream, got.seq) == tuple(expected)


@pytest.mark.parametrize(
    "reading_id",
    [
        "",
        "5",
        "12345",
        ":5",  # no stream
        "-5",
        "q:",  # no sequence
        "q-",
        "q:05",  # leading zero: an opaque id, else q:5 and q:05 would collide
        "q:00",
        "q:x",
        "q:5x",
        "q:5 ",
        "q:+5",
        "q:1.5",
        "q:1e3",
        "q:" + "1" * 19,  # beyond a signed 64-bit key
        "q:٣",  # a digit, but not ASCII
        "q:１２",
        "opaque",
        "550e8400-e29b-41d4-a716-44665544000a",
    ],
)
def test_opaque_ids(reading_id: str) -> None:
    assert parse_stream_id(reading_id) is None


def test_separator_stays_in_the_stream() -> None:
    assert parse_stream_id("a:5") != parse_stream_id("a-5")


ids = st.text(alphabet="ab:-0129", max_size=8)


@settings(max_examples=200)
@given(ids)
def test_parse_round_trips(reading_id: str) -> None:
    parsed = parse_stream_id(reading_id)
    if parsed is not None:
        assert parsed.stream + str(parsed.seq) == reading_id
        assert parsed.stream[-1] in ":-"
        assert len(parsed.stream) >= 2
        assert 0 <= parsed.seq < 10**18


@settings(max_examples=200)
@given(ids, ids)
def test_parse_is_injective(a: str, b: str) -> None:
    pa, pb = parse_stream_id(a), parse_stream_id(b)
    if a != b and pa is not None and pb is not None:
        assert pa != pb


# --------------------------------------------------------------------------------------------
# merge_ranges, ranges_of, covered
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ranges", "merged"),
    [
        ([], []),
        ([(1, 1)], [(1, 1)]),
        ([(1, 3), (2, 5)], [(1, 5)]),
        ([(1, 3), (4, 5)], [(1, 5)]),  # touching ranges merge
        ([(1, 3), (5, 6)], [(1, 3), (5, 6)]),  # a gap of one stays
        ([(5, 6), (1, 3)], [(1, 3), (5, 6)]),
        ([(1, 10), (2, 3)], [(1, 10)]),  # contained
        ([(2, 3), (1, 10)], [(1, 10)]),
        ([(1, 2), (1, 2)], [(1, 2)]),
        ([(1, 2), (3, 4), (5, 6), (10, 10)], [(1, 6), (10, 10)]),
        ([(0, 0), (-3, -1)], [(-3, 0)]),
    ],
)
def test_merge_ranges_examples(
    ranges: list[tuple[int, int]], merged: list[tuple[int, int]]
) -> None:
    assert merge_ranges(ranges) == merged


def test_merge_ranges_does_not_change_its_argument() -> None:
    ranges = [(5, 6), (1, 3)]
    merge_ranges(ranges)
    assert ranges == [(5, 6), (1, 3)]


@pytest.mark.parametrize(
    ("seqs", "ranges"),
    [
        ([], []),
        ([7], [(7, 7)]),
        ([3, 1, 2], [(1, 3)]),
        ([1, 1, 1], [(1, 1)]),
        ([1, 2, 4, 5, 9], [(1, 2), (4, 5), (9, 9)]),
        ([10, 8, 9, 1], [(1, 1), (8, 10)]),
    ],
)
def test_ranges_of_examples(seqs: list[int], ranges: list[tuple[int, int]]) -> None:
    assert ranges_of(seqs) == ranges


@pytest.mark.parametrize(
    ("seq", "expected"),
    [
        (0, False),
        (1, True),
        (3, True),
        (4, False),
        (5, False),
        (6, True),
        (8, True),
        (9, False),
        (100, True),
        (101, False),
        (-5, False),
    ],
)
def test_covered_examples(seq: int, expected: bool) -> None:
    assert covered(seq, [(1, 3), (6, 8), (100, 100)]) is expected


def test_covered_in_nothing() -> None:
    assert covered(1, []) is False


def members(ranges: list[tuple[int, int]]) -> set[int]:
    return {n for lo, hi in ranges for n in range(lo, hi + 1)}


small = st.integers(min_value=-20, max_value=60)
ranges_st = st.lists(
    st.tuples(small, st.integers(min_value=0, max_value=8)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=12,
)


def assert_canonical(ranges: list[tuple[int, int]]) -> None:
    for lo, hi in ranges:
        assert lo <= hi
    for (_, hi), (lo, _) in pairwise(ranges):
        assert lo > hi + 1  # sorted, disjoint and not even touching


@settings(max_examples=200)
@given(ranges_st)
def test_merge_ranges_is_canonical_and_covers_exactly_the_union(
    ranges: list[tuple[int, int]],
) -> None:
    merged = merge_ranges(ranges)
    assert_canonical(merged)
    assert members(merged) == members(ranges)
    assert merge_ranges(merged) == merged
    assert merge_ranges(list(reversed(ranges))) == merged


@settings(max_examples=200)
@given(st.lists(small, max_size=30))
def test_ranges_of_is_canonical_and_covers_exactly_the_seqs(seqs: list[int]) -> None:
    ranges = ranges_of(seqs)
    assert_canonical(ranges)
    assert members(ranges) == set(seqs)
    assert ranges == merge_ranges([(s, s) for s in seqs])


@settings(max_examples=200)
@given(ranges_st, st.lists(small, max_size=10), small)
def test_covered_agrees_with_a_set_model(
    ranges: list[tuple[int, int]], more: list[int], probe: int
) -> None:
    merged = merge_ranges(ranges + ranges_of(more))
    model = members(ranges) | set(more)
    assert covered(probe, merged) is (probe in model)
    for n in model:
        assert covered(n, merged)
