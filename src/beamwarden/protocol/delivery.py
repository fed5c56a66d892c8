"""Room: protocol (pure). Reading ids and what they promise (PROTOCOL.md "Delivery").

A reading id ``<stream><sep><seq>`` — ``sep`` is ``:`` (preferred) or ``-``, ``seq`` a non-negative
decimal integer without leading zeros — is deduplicated by per-stream sequence ranges, for ever.
Any other id is deduplicated within a window (default 7 days). The separator stays part of the
stream name, so the mapping from id to ``(stream, seq)`` is one-to-one: ``a:5`` and ``a-5`` are
different readings, and so are ``a:5`` and ``a:05`` (the latter is an opaque id).
"""

from __future__ import annotations

from typing import NamedTuple


class StreamSeq(NamedTuple):
    stream: str
    seq: int


def parse_stream_id(reading_id: str) -> StreamSeq | None:
    """Split a reading id into ``(stream, seq)``, or ``None`` for an opaque id.

    The stream is everything up to and including the *last* separator followed only by digits.
    """
    sep = max(reading_id.rfind(":"), reading_id.rfind("-"))
    if sep <= 0:
        return None
    digits = reading_id[sep + 1 :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        return None
    if len(digits) > 1 and digits[0] == "0":
        return None
    return StreamSeq(reading_id[: sep + 1], int(digits))


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge inclusive integer ranges that overlap or touch; the result is sorted."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def ranges_of(seqs: list[int]) -> list[tuple[int, int]]:
    """The sorted, merged inclusive ranges covering ``seqs``."""
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq <= out[-1][1] + 1:
            if seq > out[-1][1]:
                out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def covered(seq: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether ``seq`` lies in one of the sorted, disjoint ``ranges`` (binary search)."""
    lo_i, hi_i = 0, len(ranges)
    while lo_i < hi_i:
        mid = (lo_i + hi_i) // 2
        lo, hi = ranges[mid]
        if seq < lo:
            hi_i = mid
        elif seq > hi:
            lo_i = mid + 1
        else:
            return True
    return False
