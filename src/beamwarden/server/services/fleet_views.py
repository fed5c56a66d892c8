"""Room: server/services. Fleet listings: pages of nodes with their computed status, and counts.

The fast path behind ``GET /api/nodes`` and the dashboard's fleet page: a page of 1000 nodes is
read as tuples of the columns a node record shows (tags as their stored JSON text), the status is
computed inline by :mod:`beamwarden.fleet.status`'s integer rule (its limits once per distinct
interval), and each node becomes one :class:`NodeSummary` (a ``msgspec.Struct``: cheap to make,
encoded to JSON without a per-node pydantic model).

``GET /api/nodes`` goes further (:meth:`FleetViews.page_json`): the database packs each row into
one text (``NodeListingStore.list_node_packed``), and the node's JSON — exactly msgspec's encoding
of its ``NodeSummary`` — is kept between listings, for each status, cut around the heartbeat age;
while the packed text, the floats and the unwritten heartbeat stay the same, a listing only picks
the status and writes the age. A node that changed is encoded anew (and kept).

Heartbeats this process has accepted but not yet written (:attr:`NodeRegistry.last_seen
<beamwarden.server.services.registry.NodeRegistry.last_seen>`) count, as in
:meth:`NodeRegistry.view <beamwarden.server.services.registry.NodeRegistry.view>`: the two give
the same record for a node.

Filters on role, site, tag and text are SQL; a filter on status is applied here, on the server's
clock, page after page of the SQL answer until the page is full (a page of a rare status may read
the whole fleet: 10 000 nodes in ~60 ms here). A page and its counts are computed at one instant.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from beamwarden.fleet import Holder, status_at_age, status_limits_us
from beamwarden.protocol import InstanceState, NodeStatus
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import (
    Heartbeat,
    NodeFilter,
    NodeListRow,
    NodePackedRow,
    from_us,
    to_us,
)
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.leases import LeaseService, node_lease_name
from beamwarden.server.services.pagination import decode_cursor, encode_cursor
from beamwarden.server.services.ports import NodeListingStore

#: how many rows are read at a time while a status filter fills a page
_SCAN_CHUNK = 1000
#: at most this many datetimes are kept by a listing (two a node: 100 000 nodes)
_TIMES_KEPT = 200_000
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
_json = msgspec.json.Decoder().decode
_enc = msgspec.json.Encoder().encode
#: at most this many nodes' JSON fragments are kept
_NODES_KEPT = 100_000

#: no filter: every node, revoked ones too
ALL_NODES = NodeFilter()
_UNKNOWN = NodeStatus.UNKNOWN
_RUNNING = (NodeStatus.ONLINE, NodeStatus.DEGRADED)
_STATES: dict[str, InstanceState] = {state.value: state for state in InstanceState}
_STATUS_JSON: dict[NodeStatus, bytes] = {status: _enc(status) for status in NodeStatus}


class NodeSummary(msgspec.Struct, frozen=True):
    """A node with what the server computes about it, on the server's clock: the node record of
    ``GET /api/nodes`` (``NodeInventoryRecord``, same fields in the same order)."""

    node_id: str
    role: str
    status: NodeStatus
    display_name: str | None
    site: str | None
    room: str | None
    operator_tags: dict[str, str]
    hostname: str | None
    ip_address: str | None
    software_version: str | None
    reported_tags: dict[str, str]
    registered_at: datetime | None
    created_at: datetime
    last_heartbeat_at: datetime | None
    heartbeat_age_seconds: float | None
    interval_seconds: float
    uptime_seconds: float | None
    """As last reported; uptime *now* is ``now - running_since``."""
    instance_id: str | None
    state: InstanceState | None
    protocol_version: str | None
    clock_offset_seconds: float | None
    enrolment_open: bool
    running_since: datetime | None
    """When the running agent started (its last heartbeat's receive time minus the uptime it
    reported); ``None`` unless online or degraded."""
    software_version_since: datetime | None = None
    """Not looked up by listings (``NodeRegistry.get`` does, from the activity log)."""


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """How many nodes have each status ("N of M online")."""

    online: int = 0
    degraded: int = 0
    offline: int = 0
    unknown: int = 0

    @property
    def total(self) -> int:
        return self.online + self.degraded + self.offline + self.unknown

    def of(self, status: NodeStatus) -> int:
        count: int = getattr(self, status.value)
        return count


@dataclass(frozen=True, slots=True)
class NodePage:
    """One page of a listing, in node id order."""

    items: list[NodeSummary]
    next_cursor: str | None
    """Opaque; pass it back (with the same filters) for the next page. ``None``: the last."""
    counts: StatusCounts | None = None
    """Over every node the filters match, the status filter left out (when asked for)."""
    lease_holders: dict[str, Holder] = field(default_factory=dict)
    """node_id → who holds its node lease now (when asked for; nodes held by none left out)."""
    last_reading_at: dict[str, datetime] = field(default_factory=dict)
    """node_id → its newest reading's time, from its own sensors (when asked for)."""


class FleetViews:
    """Listings of the fleet for the API and the dashboard."""

    def __init__(
        self,
        store: NodeListingStore,
        clock: Clock,
        last_seen: dict[str, Heartbeat],
        leases: LeaseService | None = None,
    ):
        self._store = store
        self._clock = clock
        #: the registry's dict (shared, not copied): heartbeats fresher than the database
        self._last_seen = last_seen
        self._leases = leases
        self._limits: dict[float, tuple[int, int]] = {}
        #: creation and registration times (µs → datetime) seen in listings: they seldom change,
        #: and making a datetime is a tenth of a node's cost
        self._times: dict[int, datetime] = {}
        #: node_id → its JSON in fragments (``page_json``)
        self._kept: dict[str, _Fragments] = {}

    async def page(
        self,
        flt: NodeFilter = ALL_NODES,
        *,
        statuses: Collection[NodeStatus] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        counts: bool = False,
        lease_holders: bool = False,
        last_readings: bool = False,
    ) -> NodePage:
        """Up to ``limit`` nodes matching ``flt`` (and having one of ``statuses``, if given),
        after ``cursor``. ``counts``, ``lease_holders``, ``last_readings``: also fill those
        fields of the page (each one more query; the last two only for the page's nodes).
        Raises InvalidRequest for a cursor this listing did not give or a malformed tag key."""
        _check(flt, limit)
        after = decode_cursor("nodes", cursor, (str,))[0] if cursor else None
        now_us = to_us(self._clock.now())
        if statuses is None:
            rows = await self._store.list_node_rows(flt, limit + 1, after)
            items = [self._summary(row, now_us) for row in rows]
        else:
            items = await self._scan(flt, frozenset(statuses), limit + 1, after, now_us)
        more = len(items) > limit
        del items[limit:]
        newest = (
            await self._store.last_reading_us([n.node_id for n in items])
            if last_readings and items
            else {}
        )
        return NodePage(
            items,
            encode_cursor("nodes", [items[-1].node_id]) if more and items else None,
            counts=await self._count(flt, now_us) if counts else None,
            lease_holders=await self._holders(items) if lease_holders else {},
            last_reading_at={node_id: from_us(us) for node_id, us in newest.items()},
        )

    async def page_json(self, *, limit: int = 100, cursor: str | None = None) -> bytes:
        """``{"items": [...], "next_cursor": ...}`` of ``page(limit=limit, cursor=cursor)``, byte
        for byte as msgspec encodes it, from fragments of each node's JSON kept between listings
        (a node is encoded anew only when its row or its unwritten heartbeat changed)."""
        _check(ALL_NODES, limit)
        after = decode_cursor("nodes", cursor, (str,))[0] if cursor else None
        now_us = to_us(self._clock.now())
        rows = await self._store.list_node_packed(ALL_NODES, limit + 1, after)
        more = len(rows) > limit
        encoded = self._encoded
        nodes = [encoded(row, now_us) for row in rows[:limit]]
        next_cursor = encode_cursor("nodes", [rows[limit - 1][0]]) if more else None
        close = b'],"next_cursor":' + _enc(next_cursor) + b"}"
        if not nodes:
            return b'{"items":[' + close
        # one join, no copy of the whole page after it (~650 kB a page of 1000)
        nodes[0] = b'{"items":[' + nodes[0]
        nodes[-1] += close
        return b",".join(nodes)

    async def counts(self, flt: NodeFilter = ALL_NODES) -> StatusCounts:
        """How many nodes matching ``flt`` have each status, now."""
        _check(flt, 1)
        return await self._count(flt, to_us(self._clock.now()))

    async def _count(self, flt: NodeFilter, now_us: int) -> StatusCounts:
        tally = dict.fromkeys(NodeStatus, 0)
        last_seen = self._last_seen
        for node_id, last_us, interval in await self._store.node_beats(flt):
            beat = last_seen.get(node_id)
            if beat is not None and (last_us is None or beat.received_us >= last_us):
                last_us, interval = beat.received_us, beat.interval_seconds
            if last_us is None:
                tally[NodeStatus.UNKNOWN] += 1
            else:
                tally[status_at_age(now_us - last_us, self._status_limits(interval))] += 1
        return StatusCounts(**{status.value: n for status, n in tally.items()})

    async def _scan(
        self,
        flt: NodeFilter,
        statuses: frozenset[NodeStatus],
        want: int,
        after: str | None,
        now_us: int,
    ) -> list[NodeSummary]:
        found: list[NodeSummary] = []
        while len(found) < want:
            rows = await self._store.list_node_rows(flt, _SCAN_CHUNK, after)
            for row in rows:
                node = self._summary(row, now_us)
                if node.status in statuses:
                    found.append(node)
                    if len(found) == want:
                        break
            if len(rows) < _SCAN_CHUNK:
                break
            after = rows[-1].node_id
        return found

    async def _holders(self, items: list[NodeSummary]) -> dict[str, Holder]:
        if self._leases is None:
            return {}
        holders: dict[str, Holder] = {}
        for node in items:
            lease = await self._leases.get(node_lease_name(node.node_id))
            if lease is not None:
                holders[node.node_id] = lease.holder
        return holders

    def _status_limits(self, interval_seconds: float) -> tuple[int, int]:
        limits = self._limits.get(interval_seconds)
        if limits is None:
            limits = self._limits[interval_seconds] = status_limits_us(interval_seconds)
        return limits

    def _time(self, us: int) -> datetime:
        found = self._times.get(us)
        if found is None:
            if len(self._times) >= _TIMES_KEPT:
                self._times.clear()
            found = self._times[us] = from_us(us)
        return found

    def _effective(self, row: NodeListRow) -> NodeListRow:
        """The row with this process's unwritten heartbeat of the node, if fresher, applied."""
        beat = self._last_seen.get(row[0])
        last_us = row[12]
        if beat is None or (last_us is not None and beat.received_us < last_us):
            return row
        return NodeListRow(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            beat.software_version,
            row[9],
            row[10],
            row[11],
            beat.received_us,
            beat.interval_seconds,
            beat.uptime_seconds,
            beat.instance_id,
            beat.state,
            beat.protocol_version,
            beat.clock_offset_seconds,
            row[19],
        )

    def _summary(self, row: NodeListRow, now_us: int) -> NodeSummary:
        # the hot loop of a listing (10 000 calls for the whole fleet): plain locals, positional
        # construction, one dict look-up per distinct interval and instance state
        (
            node_id,
            role,
            display_name,
            site,
            room,
            operator_tags,
            hostname,
            ip_address,
            software_version,
            reported_tags,
            created_us,
            registered_us,
            last_us,
            interval,
            uptime,
            instance_id,
            state,
            protocol_version,
            clock_offset,
            enrolment_open,
        ) = self._effective(row)
        running_since = last_heartbeat = age = None
        if last_us is None:
            status = _UNKNOWN
        else:
            limits = self._limits.get(interval) or self._status_limits(interval)
            status = status_at_age(now_us - last_us, limits)
            last_heartbeat = from_us(last_us)
            age = max(0, now_us - last_us) / 1_000_000
            if uptime is not None and status in _RUNNING:
                running_since = last_heartbeat - timedelta(seconds=uptime)
        return NodeSummary(
            node_id,
            role,
            status,
            display_name,
            site,
            room,
            _tags(operator_tags),
            hostname,
            ip_address,
            software_version,
            _tags(reported_tags),
            None if registered_us is None else self._time(registered_us),
            self._time(created_us),
            last_heartbeat,
            age,
            float(interval),
            uptime,
            instance_id,
            None if state is None else _STATES[state],
            protocol_version,
            clock_offset,
            bool(enrolment_open),
            running_since,
        )

    def _encoded(self, row: NodePackedRow, now_us: int) -> bytes:
        """The node's JSON as ``_enc(self._summary(...))`` gives it, from its kept fragments:
        only the status, the heartbeat age and ``running_since`` are made anew."""
        node_id, packed, interval, uptime, clock_offset = row
        # what the JSON is made of: the row and the unwritten heartbeat (applied or not)
        key = (packed, interval, uptime, clock_offset, self._last_seen.get(node_id))
        kept = self._kept.get(node_id)
        if kept is None or kept.key != key:
            kept = self._keep(self._effective(self._store.unpack_node(row)), key, now_us)
        if kept.last_us is None:
            return kept.whole
        last_us = kept.last_us
        before, after = kept.parts[status_at_age(now_us - last_us, kept.limits)]
        return b"".join((before, _enc(max(0, now_us - last_us) / 1_000_000), after))

    def _keep(self, row: NodeListRow, key: tuple[object, ...], now_us: int) -> _Fragments:
        """Encode the node once and cut its JSON around the three values that depend on ``now``
        (keys in fields after the tags are found from the end: a tag may be named like one)."""
        node = self._summary(row, now_us)
        whole = _enc(node)
        if len(self._kept) >= _NODES_KEPT:
            self._kept.clear()
        last_us = row.last_heartbeat_us
        if last_us is None:
            kept = _Fragments(key, whole)
        else:
            # the JSON around the status, the heartbeat age and running_since, for each status
            status_at = whole.index(b',"status":') + 10
            status_end = status_at + len(_STATUS_JSON[node.status])
            age_at = whole.rindex(b',"heartbeat_age_seconds":') + 25
            age_end = whole.index(b',"interval_seconds":', age_at)
            since_at = whole.rindex(b',"running_since":') + 17
            since_end = whole.index(b',"software_version_since":', since_at)
            uptime = row.uptime_seconds
            since = (
                b"null" if uptime is None else _enc(from_us(last_us) - timedelta(seconds=uptime))
            )
            head, middle = whole[:status_at], whole[status_end:age_at]
            tail, end = whole[age_end:since_at], whole[since_end:]
            kept = _Fragments(
                key,
                b"",
                {
                    status: (
                        head + _STATUS_JSON[status] + middle,
                        tail + (since if status in _RUNNING else b"null") + end,
                    )
                    for status in (NodeStatus.ONLINE, NodeStatus.DEGRADED, NodeStatus.OFFLINE)
                },
                last_us,
                self._limits.get(row.interval_seconds) or self._status_limits(row.interval_seconds),
            )
        self._kept[row.node_id] = kept
        return kept


@dataclass(frozen=True, slots=True)
class _Fragments:
    """A node's JSON, valid while its row and unwritten heartbeat (``key``) stay the same: whole
    when it has no heartbeat, else for each status the bytes before and after the heartbeat age
    (the status and ``running_since`` in them)."""

    key: tuple[object, ...]
    whole: bytes
    parts: dict[NodeStatus, tuple[bytes, bytes]] = field(default_factory=dict)
    last_us: int | None = None
    limits: tuple[int, int] = (0, 0)


def _tags(text: str | None) -> dict[str, str]:
    if not text or text == "{}":
        return {}
    tags: dict[str, str] | None = _json(text)
    return tags or {}


def _check(flt: NodeFilter, limit: int) -> None:
    if limit < 1:
        raise InvalidRequest("limit must be at least 1")
    if flt.tag is not None and not _TAG_KEY.match(flt.tag[0]):
        raise InvalidRequest(
            f"not a tag key: {flt.tag[0]!r} (1–64 of A-Z a-z 0-9 _ . : / -)", code="invalid_tag"
        )
