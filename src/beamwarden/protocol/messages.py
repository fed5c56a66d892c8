"""Room: protocol (pure). Registration and telemetry messages, and the answers the server gives.

These are low-rate messages, so they use pydantic (which also gives the server its OpenAPI
document); readings, the hot path, are in :mod:`.readings`.
"""

from __future__ import annotations

import re
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from .vocabulary import IDENT_PATTERN, InstanceState, NodeStatus

Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN, min_length=1, max_length=64)]
"""A node id, role or sensor type: 1–64 chars of ``[a-z0-9._-]``, starting with a letter or digit."""

TagKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")
]
TagValue = Annotated[str, StringConstraints(max_length=256)]
Text = Annotated[str, StringConstraints(max_length=256)]


def _few_tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > 64:
        raise ValueError("at most 64 tags")
    return tags


def _few_metrics(metrics: dict[str, float | bool]) -> dict[str, float | bool]:
    if len(metrics) > 256:
        raise ValueError("at most 256 metrics")
    return metrics


def _ip_text(value: IPv4Address | IPv6Address) -> str:
    return str(value)


def _ip_input(value: object) -> object:
    # pydantic would otherwise read the JSON number 1 as the address 0.0.0.1
    if not isinstance(value, str | IPv4Address | IPv6Address):
        raise ValueError("an IP address is text, e.g. 192.168.1.20 or fe80::1")
    return value


#: the start of an ISO-8601 date-time: ``2024-05-01T`` (or a space, as RFC 3339 allows)
_ISO_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _iso_timestamp(value: object) -> object:
    # PROTOCOL.md "Time": every timestamp is ISO-8601 with a zone. pydantic on its own would also
    # take a number (or a string of digits) as Unix seconds, and call it UTC.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_START.match(value)):
        return value
    raise ValueError("must be an ISO-8601 date-time with a zone, e.g. 2024-05-01T12:00:00Z")


Tags = Annotated[dict[TagKey, TagValue], AfterValidator(_few_tags)]
MetricName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
]
Metrics = Annotated[
    dict[
        MetricName,
        # strict: a number or a bool as sent, never the text "1.5" or "true" read as one
        Annotated[float, Field(strict=True, allow_inf_nan=False)]
        | Annotated[bool, Field(strict=True)],
    ],
    AfterValidator(_few_metrics),
]
IpAddress = Annotated[
    IPv4Address | IPv6Address, BeforeValidator(_ip_input), AfterValidator(_ip_text)
]
IsoTimestamp = Annotated[AwareDatetime, BeforeValidator(_iso_timestamp)]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)


class Registration(BaseModel):
    """``POST /api/nodes/register``: what a node reports about itself (seed fleet protocol 2.3)."""

    model_config = _STRICT

    node_id: Ident
    role: Ident
    hostname: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    ip_address: IpAddress
    software_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    tags: Tags = Field(default_factory=dict)


class Telemetry(BaseModel):
    """``POST /api/telemetry``: a heartbeat (seed fleet protocol 2.2)."""

    model_config = _STRICT

    node_id: Ident
    role: Ident
    timestamp: IsoTimestamp
    uptime_seconds: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
    software_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    ip_address: IpAddress
    protocol_version: Annotated[str, StringConstraints(max_length=16)] | None = None
    interval_seconds: Annotated[float, Field(strict=True, ge=1, le=86_400, allow_inf_nan=False)] = (
        30
    )
    instance_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    state: InstanceState | None = None
    metrics: Metrics = Field(default_factory=dict)
    tags: Tags = Field(default_factory=dict)


class IngestResult(BaseModel):
    """The answer to ``POST /api/readings``: stored durably, and how many were already stored."""

    accepted: int
    duplicates: int


class ErrorDetail(BaseModel):
    index: int | None = None
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail | dict[str, Any]] = Field(default_factory=list)
    request_id: str


class ErrorEnvelope(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details", "request_id"}}``."""

    error: ErrorInfo


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """Every list answer: ``{"items": [...], "next_cursor": "<opaque>" | null}``."""

    items: list[T]
    next_cursor: str | None = None


class NodeRecord(BaseModel):
    """A node as the server knows it: operator-set inventory, what it reported, computed status."""

    node_id: str
    role: str
    status: NodeStatus
    display_name: str | None = None
    site: str | None = None
    room: str | None = None
    operator_tags: dict[str, str] = Field(default_factory=dict)
    hostname: str | None = None
    ip_address: str | None = None
    software_version: str | None = None
    reported_tags: dict[str, str] = Field(default_factory=dict)
    registered_at: datetime | None = None
    created_at: datetime
    last_heartbeat_at: datetime | None = None
    heartbeat_age_seconds: float | None = None
    interval_seconds: float
    uptime_seconds: float | None = None
    instance_id: str | None = None
    state: InstanceState | None = None
    protocol_version: str | None = None
    clock_offset_seconds: float | None = None
    enrolment_open: bool = False


class Registered(NodeRecord):
    """The answer to a registration; ``token`` is present once, when the enrolment key created it."""

    token: str | None = None


class StoredReading(BaseModel):
    """One reading as ``GET /api/readings`` returns it."""

    node_id: str
    sensor_id: str
    sensor_type: str
    timestamp: datetime
    received_at: datetime
    payload: dict[str, Any]
    reading_id: str | None = None
    source: str | None = None
    timestamp_source: str = "node"
    timestamp_suspect: bool = False


class SeriesBucket(BaseModel):
    """One bucket of ``GET /api/series``; only the asked-for aggregates are present."""

    t: datetime
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None
    sum: float | None = None


class Event(BaseModel):
    """One entry of the activity log."""

    id: int
    ts: datetime
    kind: str
    node_id: str | None = None
    actor: str | None = None
    request_id: str | None = None
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
