"""Room: server (records; imports nothing of the server). Plain data of alerts, check-ins and
notifications, passed between :mod:`beamwarden.server.services.alerts` (and its siblings) and the
adapter :mod:`beamwarden.server.store.alerts`, which must not import each other.

Times are epoch microseconds (``*_us``), as everywhere on the storage side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SilenceRow:
    id: int
    name: str
    rules: tuple[str, ...]
    scope: dict[str, Any]
    starts_us: int
    ends_us: int
    comment: str
    created_by: str | None
    created_us: int
    deleted_us: int | None = None


@dataclass(frozen=True, slots=True)
class NewSilence:
    name: str
    rules: tuple[str, ...]
    scope: dict[str, Any]
    starts_us: int
    ends_us: int
    comment: str
    created_by: str | None
    created_us: int


@dataclass(frozen=True, slots=True)
class CheckinRow:
    id: int
    name: str
    every_s: float | None
    cron: str | None
    grace_s: float
    created_us: int
    last_ping_us: int | None = None
    last_status: str | None = None  # "success" | "fail"
    last_message: str | None = None


@dataclass(frozen=True, slots=True)
class NewNotification:
    """One message for one channel, written to the outbox with the alert state that caused it."""

    created_us: int
    channel: str
    rule: str
    subject: str
    kind: str
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class NotificationRow:
    id: int
    created_us: int
    channel: str
    rule: str
    subject: str
    kind: str
    title: str
    body: str
    status: str  # "pending" | "sent" | "failed"
    attempts: int
    next_attempt_us: int
    sent_us: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """A sensor as the evaluator sees it: its numeric fields and its last reading."""

    ref: int
    node_id: str  # the owner, or for a fleet-wide sensor the node of its last reading ('' if none)
    sensor_id: str
    sensor_type: str
    fields: tuple[str, ...]
    last_ts_us: int | None
    #: every slot column is taken: its further numeric fields live only in the payload
    overflow: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading's numeric fields, for the evaluator."""

    sensor_ref: int
    node_id: str
    ts_us: int
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CycleWrite:
    """What one evaluation cycle persists in one transaction.

    ``states``: rule → ``AlertState.to_dict()`` (``None`` deletes the rule's row); ``meta``:
    evaluator documents by name; ``outbox``: the notifications the transitions cause.
    """

    now_us: int
    states: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    outbox: list[NewNotification] = field(default_factory=list)
