"""Room: server (records; imports only ``protocol``). Plain data passed between services and adapters.

Services define the ports (:mod:`beamwarden.server.services.ports`); adapters implement them and must
not import services, so the records both sides exchange live here, below both.
Times are epoch microseconds (``*_us``) on the storage side; that is what both stores keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
    return EPOCH + timedelta(microseconds=us)


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
