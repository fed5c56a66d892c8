"""Room: server/store (adapter). The readings hot path: the part both databases share.

Imports ``beamwarden.protocol``, ``beamwarden.server.records`` and msgspec; no I/O. A group of
batches (one ``write_readings`` call) becomes a :class:`GroupPlan`: one insert tuple per reading in
:data:`~.schema.READING_COLUMNS` order, the reading ids grouped for deduplication, and the sensors
the caches do not know yet. The SQLite and PostgreSQL writers do the I/O around it:

1. resolve node refs missing from the cache (:meth:`IngestCache.missing_nodes`);
2. ``GroupPlan(batches, cache, marks)`` — the per-reading pass, kept to a few dict look-ups, one
   ``msgspec`` encode, one regex match of the reading id and a loop over the payload; each row is
   one plain tuple (no per-row dicts or SQLAlchemy constructs; a tuple rather than a list because
   the garbage collector stops tracking a tuple of scalars, and it keeps tracking a list). It
   runs with the GIL held while the event loop wants it for the next requests: every step counts.
   Missing values are written with the database's :class:`NullMarks` (``None`` for asyncpg's
   COPY; for SQLite values its ``sqlite3`` module binds without the costly adaptation it
   applies to every ``None``);
3. in the transaction: create/lock the pending sensors and assign slots
   (:func:`assign_slots`, then :meth:`GroupPlan.complete`); load stored ranges and keys;
   :meth:`GroupPlan.dedup_streams` / :meth:`GroupPlan.dedup_opaque`; look up the stored readings of
   duplicates and :meth:`GroupPlan.check_stored`; write ranges, keys and
   :meth:`GroupPlan.accepted_rows` (SQLite appends each row's ``id`` from its ``sequences``
   counter; PostgreSQL's identity default gives it); commit;
4. after the commit only, :meth:`IngestCache.adopt` the sensors created or changed (a rolled-back
   transaction must not leave refs or slots in the cache).

Numbers for the slot columns are the payload values whose class is exactly ``int`` or ``float``
(``bool`` is an ``int`` subclass and is excluded), stored as doubles; an integer too large for a
double (JSON allows it) stays only in the payload rather than failing the whole group. A sensor's field → slot map is append-only, so a
cached map stays valid; a numeric field beyond the 8th stays only in the payload.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from beamwarden.protocol import covered, is_fleet_wide, merge_ranges, ranges_of
from beamwarden.server.records import BatchOutcome, ReadingBatch

from .layout import SLOTS

#: (owner, sensor_id, sensor_type); owner is the node id, or '' for a fleet-wide sensor id
SensorKey = tuple[str, str, str]
#: one row of ``readings`` in READING_COLUMNS order
Row = tuple[Any, ...]

_NUMBER = (int, float)
#: a reading id of a stream: everything up to the last ':' or '-', then 1-18 ASCII digits
#: without a leading zero (:func:`beamwarden.protocol.parse_stream_id`'s rule)
_STREAM_MATCH = re.compile(r"(.+[:-])(0|[1-9][0-9]{0,17})\Z", re.DOTALL).match
_FIRST = operator.itemgetter(0)  # a row's sensor_ref; a stream item's seq
_TS = operator.itemgetter(3)  # a row's ts_us
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class NullMarks(NamedTuple):
    """What a row holds where a value is missing (the writer's SQL turns it back into NULL).

    ``sqlite3`` adapts every bound ``None`` through its adapter registry and two attribute look-ups
    (about 0.4 µs each, 8 per typical row: 40 % of ``executemany``); an exact ``int``, ``float``
    or ``str`` is bound directly. So the SQLite writer uses :data:`SQLITE_MARKS`: ``0`` for no
    relay (node ids start at 1; ``nullif(?, 0)``), ``''`` for no reading id (a reading id has 1-128
    characters; ``nullif(?, '')``) and NaN for an empty value slot (SQLite stores a bound NaN as
    NULL: a contract test checks it). asyncpg's COPY takes ``None`` as it is (:data:`NO_MARKS`).
    """

    ref: int | None
    text: str | None
    number: float | None


NO_MARKS = NullMarks(None, None, None)
SQLITE_MARKS = NullMarks(0, "", math.nan)
MINUTE_US = 60_000_000
#: PostgreSQL: the advisory lock space (``pg_advisory_xact_lock(space, key)``) of the minutes a
#: commit marks for the rollup job, and how many keys it has (a minute's key is its number modulo
#: this: keys repeat after ~17 h, so an old backfilled minute may share the current minute's key)
MINUTE_LOCK_SPACE = 0x6277_0060
MINUTE_LOCK_KEYS = 1024


def sequence_sql(name: str) -> str:
    """The ``SELECT`` of a ``sequences`` row's value (0 before the row exists)."""
    return f"SELECT coalesce(max(value), 0) FROM sequences WHERE name = '{name}'"


#: the ``sequences`` row of SQLite's last readings id (the writer bumps it under the write lock)
READINGS_SEQUENCE = "readings"
#: the ``sequences`` row the rollup job adds one to whenever it deletes minute marks
MARKS_GENERATION = "rollup_marks"
MARKS_GENERATION_SQL = sequence_sql(MARKS_GENERATION)
#: a commit with fewer marks writes them all rather than ask the generation (a statement more)
MARKS_WORTH_A_LOOK = 100
#: most minute keys a commit takes; a commit spanning more locks its marks' rows instead
MINUTE_LOCKS_MAX = 64
#: most sensor ids whose fleet-wide verdict is cached (the cache is cleared beyond it)
_FLEET_CACHE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class SensorEntry:
    """A sensor row as cached: its id and its field → slot map (never mutated once built).

    ``full``: no slot is free (computed once: the hot path asks for every unslotted number).
    """

    ref: int
    slots: dict[str, int]
    full: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "full", len(self.slots) >= SLOTS)


class IngestCache:
    """In-process caches of one store: sensor refs and slots, node refs, fleet-wide verdicts."""

    def __init__(self) -> None:
        self.sensors: dict[SensorKey, SensorEntry] = {}
        self.nodes: dict[str, int] = {}
        self.fleet_wide: dict[str, bool] = {}

    def missing_nodes(self, batches: list[ReadingBatch]) -> list[str]:
        """Node ids named by the batches (readings' nodes and sources) without a cached ref."""
        known = self.nodes
        names = {b.source for b in batches}
        for b in batches:
            names.update([r.node_id for r in b.readings])
        return sorted(n for n in names if n not in known)

    def adopt(self, staged: dict[SensorKey, SensorEntry]) -> None:
        """Take the sensor entries of a committed transaction (the fuller map wins)."""
        for key, entry in staged.items():
            old = self.sensors.get(key)
            if old is None or len(entry.slots) >= len(old.slots):
                self.sensors[key] = entry


@dataclass(frozen=True, slots=True)
class MarksSeen:
    """The marks a transaction made sure of, and the generation it saw them in (``None``: it
    locked their rows instead, which says nothing of later commits)."""

    generation: int | None
    marks: list[tuple[int, int]]


class MarksCache:
    """The minute marks a writer made sure of since the rollup job last deleted marks.

    A mark seen in the current generation still exists: only the job deletes marks, and it adds
    one to the generation (``sequences`` row :data:`MARKS_GENERATION`) in the same transaction.
    PostgreSQL: it deletes a minute's marks only while it holds the minute's key exclusively,
    which a commit marking that minute holds shared; SQLite: the writer reads the generation
    under the write lock. So a commit that finds the generation unchanged need not mark again
    the minutes it knows; every commit of a 1000-series load would otherwise probe 1000 marks.
    """

    MAX = 200_000

    def __init__(self) -> None:
        self.generation: int | None = None
        self.marks: set[tuple[int, int]] = set()

    def adopt(self, seen: MarksSeen) -> None:
        """Take what a committed transaction saw."""
        if seen.generation is None:
            return
        if self.generation is None or seen.generation > self.generation:
            self.generation = seen.generation
            self.marks = set(seen.marks)
        elif seen.generation == self.generation:
            if len(self.marks) > self.MAX:
                self.marks.clear()
            self.marks.update(seen.marks)


def stream_seq(reading_id: str) -> tuple[str, int] | None:
    """:func:`beamwarden.protocol.parse_stream_id` as a plain tuple, with one regex match.

    The same rule (a contract test checks that both agree on every input): the stream is
    everything up to and including the last ``:`` or ``-`` (at least one character before it),
    followed by 1-18 ASCII digits without a leading zero. (Digits never contain a separator, so
    the match cannot end at an earlier one.) :meth:`GroupPlan._build` inlines it.
    """
    m = _STREAM_MATCH(reading_id)
    if m is None:
        return None
    stream, digits = m.groups()
    return stream, int(digits)


def owner_of(sensor_id: str, node_id: str) -> str:
    return "" if is_fleet_wide(sensor_id) else node_id


def encode_fields(slots: dict[str, int]) -> str:
    return _encode(slots).decode()


def decode_fields(value: Any) -> dict[str, int]:
    """``sensors.fields`` as read by a raw driver (JSON text, bytes or an already decoded dict)."""
    if isinstance(value, str | bytes):
        value = _decode(value)
    return {str(k): int(v) for k, v in dict(value or {}).items()}


def assign_slots(slots: dict[str, int], wanted: dict[str, None]) -> dict[str, int] | None:
    """``slots`` extended by the ``wanted`` fields (in order) while slots are free; ``None`` if
    nothing changes. Slots are taken in order, so the next free one is ``len(slots)``."""
    out: dict[str, int] | None = None
    for name in wanted:
        if name in slots or (out is not None and name in out):
            continue
        current = out if out is not None else slots
        if len(current) >= SLOTS:
            break
        if out is None:
            out = dict(slots)
        out[name] = len(out)
    return out


def minute_lock_key(minute_us: int) -> int:
    """The key, in :data:`MINUTE_LOCK_SPACE`, that guards the rollup marks of a minute."""
    return minute_us // MINUTE_US % MINUTE_LOCK_KEYS


def advisory_key(node_id: str, stream: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` of one (node, stream)."""
    digest = hashlib.blake2b(f"{node_id}\x00{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def same_payload(a: str, b: str) -> bool:
    return a == b or _decode(a) == _decode(b)


class GroupPlan:
    """One group of batches, prepared for one transaction (see the module docstring)."""

    def __init__(
        self, batches: list[ReadingBatch], cache: IngestCache, marks: NullMarks = NO_MARKS
    ) -> None:
        self.batches = batches
        self.marks = marks
        #: one row per reading, in arrival order (rows of pending sensors: see :meth:`complete`)
        self.rows: list[Row] = []
        #: (node_id, stream) -> [(seq, index)], in arrival order
        self.streams: dict[tuple[str, str], list[tuple[int, int]]] = {}
        #: node_id -> [(reading_id, index)], in arrival order
        self.opaque: dict[str, list[tuple[str, int]]] = {}
        #: sensors to create or extend -> numeric field names wanting a slot, in order
        self.pending: dict[SensorKey, dict[str, None]] = {}
        self._pending_rows: list[tuple[int, SensorKey, dict[str, Any]]] = []
        #: 1 where the reading is a duplicate (not stored)
        self.dup = bytearray()
        #: duplicates of readings stored before this group: index
        self.stored_dups: list[int] = []
        #: reading index -> conflict (its reading id arrived with a different payload)
        self.conflicts: set[int] = set()
        self._build(cache)

    # -- the per-reading pass -------------------------------------------------------------

    def _build(self, cache: IngestCache) -> None:
        """One row per reading: ``(sensor_ref, node_ref, source_ref, ts_us, received_us, flags,
        reading_id, payload, v0..v7)``, with the numbers of the payload's slotted fields.

        A reading whose sensor is not cached, or that brings a numeric field the sensor has no
        slot for while slots are free, gets a row without values, completed by :meth:`complete`
        once the transaction has resolved the sensor. Missing values are ``self.marks``.
        """
        rows = self.rows
        append = rows.append
        nodes = cache.nodes
        sensors = cache.sensors
        fleet = cache.fleet_wide
        if len(fleet) > _FLEET_CACHE_MAX:
            fleet.clear()
        streams = self.streams
        opaque = self.opaque
        pending_rows = self._pending_rows
        encode = _encode
        match = _STREAM_MATCH
        no_ref, no_text, no_number = self.marks
        # the readings of one stream usually come in a run: skip the dict for the next one
        last_node: str | None = None
        last_stream = ""  # with last_node None: no stream yet
        last_seqs: list[tuple[int, int]] = []
        index = 0
        for batch in self.batches:
            received = batch.received_us
            source = batch.source
            source_ref = nodes[source]
            for reading, ts, flags in zip(batch.readings, batch.ts_us, batch.flags, strict=True):
                node_id = reading.node_id
                if node_id == source:
                    node_ref = source_ref
                    relay_ref = no_ref
                else:
                    node_ref = nodes[node_id]
                    relay_ref = source_ref
                sensor_id = reading.sensor_id
                wide = fleet.get(sensor_id)
                if wide is None:
                    wide = fleet[sensor_id] = is_fleet_wide(sensor_id)
                key = ("" if wide else node_id, sensor_id, reading.sensor_type)
                payload = reading.payload
                rid = reading.reading_id
                text = encode(payload).decode()
                entry = sensors.get(key)
                missing = entry is None
                ref = 0
                v: list[Any] | None = None
                if entry is not None:
                    ref = entry.ref
                    slots = entry.slots
                    for name, value in payload.items():
                        cls = value.__class__
                        if cls is float or cls is int:  # not bool (a subclass of int)
                            slot = slots.get(name)
                            if slot is not None:
                                if v is None:
                                    v = [no_number] * SLOTS
                                if cls is float:
                                    v[slot] = value
                                else:
                                    try:  # noqa: SIM105 (a try is free here, suppress() is not)
                                        v[slot] = value + 0.0  # a double, as the column keeps it
                                    except OverflowError:
                                        pass  # an int beyond a double: only in the payload
                            elif not entry.full:
                                missing = True
                                v = None
                                break
                if v is None:
                    append(
                        (
                            ref,
                            node_ref,
                            relay_ref,
                            ts,
                            received,
                            flags,
                            no_text if rid is None else rid,
                            text,
                            no_number,
                            no_number,
                            no_number,
                            no_number,
                            no_number,
                            no_number,
                            no_number,
                            no_number,
                        )
                    )
                else:  # the values by index: no intermediate list for a * unpacking
                    append(
                        (
                            ref,
                            node_ref,
                            relay_ref,
                            ts,
                            received,
                            flags,
                            no_text if rid is None else rid,
                            text,
                            v[0],
                            v[1],
                            v[2],
                            v[3],
                            v[4],
                            v[5],
                            v[6],
                            v[7],
                        )
                    )
                if missing:
                    pending_rows.append((index, key, payload))
                    self._want(key, payload, None if entry is None else entry.slots)
                if rid is not None:
                    # the next id of the same stream, checked in C: the stream (it ends in ':'
                    # or '-') then 1-18 ASCII digits without a leading zero, as the regex says
                    if (
                        node_id == last_node
                        and rid.startswith(last_stream)
                        and (digits := rid[len(last_stream) :]).isdigit()
                        and digits.isascii()
                        and len(digits) <= 18
                        and (digits[0] != "0" or len(digits) == 1)
                    ):
                        last_seqs.append((int(digits), index))
                        index += 1
                        continue
                    m = match(rid)
                    if m is None:
                        bucket = opaque.get(node_id)
                        if bucket is None:
                            bucket = opaque[node_id] = []
                        bucket.append((rid, index))
                    else:
                        stream, digits = m.groups()
                        if stream != last_stream or node_id != last_node:
                            skey = (node_id, stream)
                            seqs = streams.get(skey)
                            if seqs is None:
                                seqs = streams[skey] = []
                            last_node, last_stream, last_seqs = node_id, stream, seqs
                        last_seqs.append((int(digits), index))
                index += 1
        self.dup = bytearray(index)

    def _want(self, key: SensorKey, payload: dict[str, Any], slots: dict[str, int] | None) -> None:
        wanted = self.pending.get(key)
        if wanted is None:
            wanted = self.pending[key] = {}
        for name, value in payload.items():
            if value.__class__ in _NUMBER and (slots is None or name not in slots):
                wanted[name] = None

    def complete(self, resolved: dict[SensorKey, SensorEntry]) -> None:
        """Finish the rows left pending, with the sensors resolved in the transaction."""
        rows = self.rows
        for index, key, payload in self._pending_rows:
            entry = resolved[key]
            slots = entry.slots
            values: list[Any] = [self.marks.number] * SLOTS
            for name, value in payload.items():
                if value.__class__ in _NUMBER:
                    slot = slots.get(name)
                    if slot is not None:
                        with contextlib.suppress(OverflowError):
                            values[slot] = value + 0.0
            rows[index] = (entry.ref, *rows[index][1:8], *values)
        self._pending_rows = []

    # -- deduplication ----------------------------------------------------------------------

    def stream_bounds(self) -> list[tuple[str, str, int, int]]:
        """Per (node, stream): the seq window whose stored ranges matter, ``[min-1, max+1]``."""
        out = []
        for (node_id, stream), items in self.streams.items():
            seqs = list(map(_FIRST, items))
            out.append((node_id, stream, min(seqs) - 1, max(seqs) + 1))
        return out

    def claims(self) -> list[tuple[str, str, int, int]] | None:
        """Each stream's seqs as ranges ``(node, stream, lo, hi)`` (disjoint, not touching), or
        ``None`` if a seq comes twice within the group."""
        out: list[tuple[str, str, int, int]] = []
        for (node_id, stream), items in self.streams.items():
            seqs = list(map(_FIRST, items))
            first = seqs[0]
            last = seqs[-1]
            if last - first == len(seqs) - 1 and seqs == list(range(first, last + 1)):
                out.append((node_id, stream, first, last))  # the common case, checked in C
            elif len(set(seqs)) == len(seqs):
                out.extend((node_id, stream, lo, hi) for lo, hi in ranges_of(seqs))
            else:
                return None
        return out

    def dedup_streams(
        self, stored: dict[tuple[str, str], list[tuple[int, int]]]
    ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int, int]]]:
        """Mark duplicates among the stream ids, given the stored ranges overlapping each stream's
        bounds. Returns the range rows to delete ``(node, stream, lo)`` and to upsert by ``lo``
        ``(node, stream, lo, hi)``: the overlapped rows merged with what is new (a merged range
        usually keeps a stored row's ``lo``: that row is updated, not deleted)."""
        delete: list[tuple[str, str, int]] = []
        upsert: list[tuple[str, str, int, int]] = []
        for skey, items in self.streams.items():
            ranges = sorted(stored.get(skey, ()))
            seqs = list(map(_FIRST, items))
            first = seqs[0]
            last = seqs[-1]
            if (
                last - first == len(seqs) - 1
                and seqs == list(range(first, last + 1))
                and not any(lo <= last and first <= hi for lo, hi in ranges)
            ):  # the common case, checked in C: in order, each once, none stored before
                new = [(first, last)]
            else:
                new = self._dedup_stream(items, ranges)
                if not new:
                    continue
            node_id, stream = skey
            merged = merge_ranges(ranges + new)
            if merged == ranges:
                continue
            kept = {lo for lo, _ in merged}
            delete.extend((node_id, stream, lo) for lo, _ in ranges if lo not in kept)
            old = set(ranges)
            upsert.extend((node_id, stream, lo, hi) for lo, hi in merged if (lo, hi) not in old)
        return delete, upsert

    def _dedup_stream(
        self, items: list[tuple[int, int]], ranges: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """One stream's ``(seq, index)`` items: mark the duplicates, return the new ranges."""
        seen: dict[int, int] = {}
        for seq, index in items:
            if ranges and covered(seq, ranges):
                self._stored_before(index)
            else:
                self._first_in_group(seen, seq, index)
        return ranges_of(list(seen))

    def dedup_opaque(self, stored: set[tuple[str, str]]) -> list[tuple[str, str, int]]:
        """Mark duplicates among the opaque ids, given the ``(node, reading_id)`` stored within the
        window. Returns the keys to insert (or refresh): ``(node, reading_id, received_us)``."""
        rows = self.rows
        new: list[tuple[str, str, int]] = []
        for node_id, items in self.opaque.items():
            seen: dict[str, int] = {}
            for rid, index in items:
                if (node_id, rid) in stored:
                    self._stored_before(index)
                elif self._first_in_group(seen, rid, index):
                    new.append((node_id, rid, rows[index][4]))
        return new

    def _stored_before(self, index: int) -> None:
        """Reading ``index`` repeats one stored before this group (checked by its payload later:
        :meth:`check_stored`)."""
        self.dup[index] = 1
        self.stored_dups.append(index)

    def _first_in_group(self, seen: dict[Any, int], key: Any, index: int) -> bool:
        """Whether ``key`` (a seq or an opaque id) is new in the group; if not, reading ``index``
        is a duplicate of the first, compared with it."""
        first = seen.get(key)
        if first is None:
            seen[key] = index
            return True
        self.dup[index] = 1
        self._compare(index, self.rows[first])
        return False

    def _compare(self, index: int, other: Row) -> None:
        row = self.rows[index]
        if (
            row[0] != other[0]  # sensor
            or row[1] != other[1]  # node
            or row[3] != other[3]  # ts
            or not same_payload(row[7], other[7])
        ):
            self.conflicts.add(index)

    def stored_keys(self) -> list[tuple[int, int, str]]:
        """``(sensor_ref, ts_us, reading_id)`` of the duplicates of stored readings, to look up."""
        keys = set()
        for index in self.stored_dups:
            row = self.rows[index]
            keys.add((row[0], row[3], row[6]))
        return sorted(keys)

    def check_stored(self, found: dict[tuple[int, int, str], list[tuple[int, str]]]) -> None:
        """Given the stored ``(node_ref, payload)`` per looked-up key, mark the conflicts."""
        for index in self.stored_dups:
            row = self.rows[index]
            candidates = found.get((row[0], row[3], row[6]), ())
            if not any(
                node == row[1] and same_payload(payload, row[7]) for node, payload in candidates
            ):
                self.conflicts.add(index)

    # -- results ------------------------------------------------------------------------------

    def accepted_rows(self) -> list[Row]:
        rows = self.rows
        dup = self.dup
        if not any(dup):
            return rows
        return [row for index, row in enumerate(rows) if not dup[index]]

    @staticmethod
    def dirty_minutes(rows: list[Row]) -> list[tuple[int, int]]:
        """The ``(sensor_ref, minute_us)`` the rows fall in, sorted (one lock order for every
        writer): the rollup marks of a commit (:mod:`.rollups`)."""
        if not rows:
            return []
        times = list(map(_TS, rows))
        low = min(times)
        minute = low - low % MINUTE_US
        if max(times) < minute + MINUTE_US:  # one minute, as a live group's usually is
            return [(ref, minute) for ref in sorted(set(map(_FIRST, rows)))]
        return sorted({(row[0], row[3] - row[3] % MINUTE_US) for row in rows})

    def outcomes(self) -> list[BatchOutcome]:
        out: list[BatchOutcome] = []
        start = 0
        dup = self.dup
        for batch in self.batches:
            end = start + len(batch.readings)
            duplicates = dup.count(1, start, end)
            conflicts: dict[str, None] = {}
            for index in sorted(i for i in self.conflicts if start <= i < end):
                rid = batch.readings[index - start].reading_id
                if rid is not None:
                    conflicts[rid] = None
            out.append(BatchOutcome(end - start - duplicates, duplicates, tuple(conflicts)))
            start = end
        return out
