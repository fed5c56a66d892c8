"""Room: server (records; imports only ``protocol``). Plain data passed between services and adapters.

Services define the ports (:mod:`beamwarden.server.services.ports`); adapters implement them and must
not import services, so the records both sides exchange live here, below both.
Times are epoch microseconds (``*_us``) on the storage side; that is what both stores keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from beamwarden.protocol import InstanceState, Reading, Scope

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: reading flags (a bit set in the ``flags`` column)
FLAG_TIMESTAMP_SUSPECT = 1
FLAG_SERVER_TIMESTAMP = 2


def to_us(dt: datetime) -> int:
    """Epoch microseconds of an aware datetime, exactly."""
    return (dt - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(0, 0, us)  # positional: a third faster (listings make many)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request's credential belongs to."""

    token_id: int
    kind: str  # "node" | "enrol" | "user"
    name: str
    scopes: frozenset[Scope]
    node_id: str | None = None

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    kind: str
    name: str
    scopes: frozenset[Scope]
    node_id: str | None
    created_us: int
    revoked_us: int | None = None
    user_id: int | None = None
    """The dashboard user whose personal token this is (``None``: made with the CLI)."""


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A node as stored: operator-set inventory, reported inventory, last heartbeat facts."""

    node_id: str
    role: str
    created_us: int
    display_name: str | None = None
    site: str | None = None
    room: str | None = None
    operator_tags: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None
    ip_address: str | None = None
    software_version: str | None = None
    reported_tags: dict[str, str] = field(default_factory=dict)
    registered_us: int | None = None
    last_heartbeat_us: int | None = None
    interval_seconds: float = 30.0
    uptime_seconds: float | None = None
    instance_id: str | None = None
    state: InstanceState | None = None
    protocol_version: str | None = None
    clock_offset_seconds: float | None = None
    clock_samples: int = 0
    enrolment_open: bool = False
    revoked_us: int | None = None


@dataclass(frozen=True, slots=True)
class NodeFilter:
    """Which nodes a listing shows; every field given must match (``None``: any)."""

    role: str | None = None
    site: str | None = None
    tag: tuple[str, str] | None = None
    """``(key, value)``: an operator-set or a reported tag ``key`` equal to ``value``."""
    search: str | None = None
    """Part of the node id, display name, hostname or IP address, case-insensitive."""
    include_revoked: bool = True


class NodeListRow(NamedTuple):
    """A node as a listing reads it: the columns a node record shows, tags as stored JSON text
    (decoded only where shown). A tuple, so that 10 000 of them are cheap to make."""

    node_id: str
    role: str
    display_name: str | None
    site: str | None
    room: str | None
    operator_tags_json: str | None
    hostname: str | None
    ip_address: str | None
    software_version: str | None
    reported_tags_json: str | None
    created_us: int
    registered_us: int | None
    last_heartbeat_us: int | None
    interval_seconds: float
    uptime_seconds: float | None
    instance_id: str | None
    state: str | None
    protocol_version: str | None
    clock_offset_seconds: float | None
    enrolment_open: bool


class NodePackedRow(NamedTuple):
    """A node as ``GET /api/nodes`` reads it: the columns of :class:`NodeListRow`, the floats as
    columns and the rest packed by the database into one text (``packed``; the store's
    ``unpack_node`` gives the values back): five objects a row instead of twenty, and one string
    that tells whether any of them changed. Read by position: the store gives the driver's own
    rows (tuples, asyncpg records) of these columns."""

    node_id: str
    packed: str
    interval_seconds: float
    uptime_seconds: float | None
    clock_offset_seconds: float | None


class NodeBeatRow(NamedTuple):
    """What a node's status needs: ``(node_id, last_heartbeat_us, interval_seconds)``."""

    node_id: str
    last_heartbeat_us: int | None
    interval_seconds: float


@dataclass(frozen=True, slots=True)
class OperatorFields:
    """What an operator sets on a node; ``None`` leaves a field unchanged."""

    display_name: str | None = None
    site: str | None = None
    room: str | None = None
    operator_tags: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ReportedFields:
    """What a node reports on registration; replaces the previous report."""

    role: str
    hostname: str
    ip_address: str
    software_version: str
    reported_tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One accepted telemetry message, ready to be written (heartbeats are written in batches)."""

    node_id: str
    ts_us: int
    received_us: int
    role: str
    uptime_seconds: float
    software_version: str
    ip_address: str
    interval_seconds: float
    protocol_version: str | None
    instance_id: str | None
    state: InstanceState | None
    metrics: dict[str, float | bool]
    tags: dict[str, str]
    clock_offset_seconds: float
    clock_samples: int


@dataclass(slots=True)
class ReadingBatch:
    """The readings of one request, validated and stamped, ready for one durable commit.

    ``readings[i]`` is stored with time ``ts_us[i]`` and flags ``flags[i]``; ``source`` is the node
    whose credential sent them (a relay may send readings of other nodes).
    """

    source: str
    received_us: int
    readings: list[Reading]
    ts_us: list[int]
    flags: list[int]
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    accepted: int
    duplicates: int
    #: reading ids that arrived again with a different payload (kept once, logged)
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadingFilter:
    node_id: str | None = None
    sensor_id: str | None = None
    sensor_type: str | None = None
    field: str | None = None  # only readings whose payload has this field
    since_us: int | None = None  # inclusive
    until_us: int | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class ReadingRow:
    id: int
    node_id: str
    sensor_id: str
    sensor_type: str
    ts_us: int
    received_us: int
    payload: dict[str, Any]
    reading_id: str | None
    source: str | None
    flags: int


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """One numeric series, bucketed. ``node_id`` is ignored for a fleet-wide sensor id."""

    node_id: str | None
    sensor_id: str
    field: str
    since_us: int
    until_us: int
    bucket_us: int
    aggregates: tuple[str, ...]  # of "avg", "min", "max", "count", "sum"
    limit: int  # most buckets returned
    after_bucket_us: int | None = None  # cursor: buckets strictly after this start


@dataclass(frozen=True, slots=True)
class SeriesRow:
    bucket_us: int
    values: dict[str, float | int | None]


@dataclass(frozen=True, slots=True)
class TelemetryQuery:
    """One numeric heartbeat metric of one node, bucketed by the server's receive time."""

    node_id: str
    metric: str
    since_us: int
    until_us: int
    bucket_us: int
    aggregates: tuple[str, ...]  # of "avg", "min", "max", "count", "sum"
    limit: int  # most buckets returned


@dataclass(frozen=True, slots=True)
class SensorLatest:
    """A sensor as the store knows it, with its newest reading (``ts_us`` None: none stored)."""

    owner: str  # the node id; '' for a fleet-wide sensor id
    sensor_id: str
    sensor_type: str
    fields: tuple[str, ...]  # the numeric fields with a slot, in slot order
    ts_us: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    node_id: str | None = None  # the node that sent the newest reading


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    ts_us: int
    kind: str
    message: str
    node_id: str | None = None
    actor: str | None = None
    request_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewEvent:
    ts_us: int
    kind: str
    message: str
    node_id: str | None = None
    actor: str | None = None
    request_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventFilter:
    node_id: str | None = None
    kind: str | None = None
    since_us: int | None = None
    until_us: int | None = None


# --- per-stream retention (issue 7) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamRow:
    """One stream (a sensor of a node) as retention sees it; ``node_id`` is ``""`` for a
    fleet-wide sensor id."""

    ref: int
    node_id: str
    sensor_type: str
    sensor_id: str


@dataclass(frozen=True, slots=True)
class StreamCuts:
    """Forget a stream's raw readings, 1-minute and 1-hour rollups before these times (``None``:
    keep them)."""

    raw_us: int | None = None
    minute_us: int | None = None
    hour_us: int | None = None


@dataclass(slots=True)
class RetentionReport:
    """What one retention sweep forgot."""

    partitions: int = 0
    raw_rows: int = 0
    minute_rows: int = 0
    hour_rows: int = 0
    streams: int = 0
