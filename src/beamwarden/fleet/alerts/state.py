"""Room: fleet (pure). Alert state and transitions: plain values the server can persist.

A rule's :class:`AlertState` maps each subject (a stream key ``node/sensor/field`` or a node id)
to a :class:`SubjectState`: ``ok``, ``pending`` (the condition holds, the ``for`` duration has not
passed) or ``firing``, with when it started and when it was last notified. Saved after every cycle
and loaded at start-up (``to_dict`` / ``from_dict``), it makes a restart neither re-fire an alert
that already notified nor forget one that is firing.

A :class:`Transition` is what the activity log records and a notification template needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["AlertState", "AlertStatus", "SubjectState", "Transition", "TransitionKind"]


class AlertStatus(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"


class TransitionKind(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
    RENOTIFY = "renotify"  # still firing: the repeat interval passed, or a silence ended


@dataclass(frozen=True, slots=True)
class SubjectState:
    """One alert instance: a rule applied to one stream or node."""

    status: AlertStatus = AlertStatus.OK
    #: pending since / firing since
    since: datetime | None = None
    #: the last notification sent (``None`` while firing: it fired during a silence)
    last_notified: datetime | None = None
    #: the last value evaluated (a pending alert fires on it when no new sample comes)
    value: float | None = None
    #: the last M values (``n_of_m`` rules)
    recent: tuple[float, ...] = ()
    #: the samples within the window (``rate_of_change`` rules)
    history: tuple[tuple[datetime, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "since": _iso(self.since),
            "last_notified": _iso(self.last_notified),
            "value": self.value,
            "recent": list(self.recent),
            "history": [[t.isoformat(), v] for t, v in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubjectState:
        return cls(
            AlertStatus(data.get("status", "ok")),
            _time(data.get("since")),
            _time(data.get("last_notified")),
            data.get("value"),
            tuple(float(v) for v in data.get("recent", ())),
            tuple((datetime.fromisoformat(t), float(v)) for t, v in data.get("history", ())),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class AlertState:
    """Every alert instance of one rule, by subject key. Subjects at rest are not stored."""

    subjects: Mapping[str, SubjectState] = field(default_factory=dict)

    def get(self, key: str) -> SubjectState:
        return self.subjects.get(key, _AT_REST)

    def firing(self) -> list[str]:
        """The subjects currently firing."""
        return [k for k, s in self.subjects.items() if s.status is AlertStatus.FIRING]

    def to_dict(self) -> dict[str, Any]:
        return {"subjects": {k: s.to_dict() for k, s in self.subjects.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        return cls({k: SubjectState.from_dict(v) for k, v in data.get("subjects", {}).items()})


_AT_REST = SubjectState()


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert instance changed (or reminds): what to log and what to notify."""

    rule: str
    kind: TransitionKind
    subject: str
    node_id: str
    at: datetime
    severity: str
    #: the value that decided, and the line it crossed (``None`` for a status rule)
    value: float | None
    threshold: float | None
    #: when the alert started firing
    since: datetime | None
    #: a silence or maintenance window holds the notification back (still log it)
    silenced: bool = False
    sensor_id: str | None = None
    field: str | None = None
    #: words for the template: "offline", "stale for 1800 s", "rising 2.5/min" …
    detail: str = ""
    #: the channels to notify (the rule's ``notify``); empty: every channel
    notify: tuple[str, ...] = ()
