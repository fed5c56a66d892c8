"""Room: fleet (pure; pydantic for validation). Alert rules, silences and maintenance windows.

Rules come from a TOML file (or the API) as plain dicts; :func:`parse_rules` turns one document
into a :class:`RuleSet` or raises :class:`RuleError` naming the rule and the key at fault::

    [[rules]]
    name = "attic-too-warm"
    kind = "threshold"
    field = "temperature_c"
    above = 29.4          # fire above 85 °F …
    clear_below = 26.7    # … clear below 80 °F (hysteresis)
    for = "5m"            # pending: it must stay above for 5 minutes
    repeat = "4h"         # remind every 4 hours while firing
    scope = { room = ["attic"], sensor_type = ["climate"] }

Kinds on streams: ``threshold`` (optionally ``n_of_m = [3, 5]``), ``rate_of_change``, ``stale``,
``battery_low``. Kinds on nodes: ``node_status``, ``clock_skew``, ``queue_backlog``.
``docs/analytics.md`` documents every key. Durations are seconds or strings such as ``"90s"``,
``"5m"``, ``"1h30m"``, ``"2d"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from beamwarden.fleet.poisson import AnalyticsError
from beamwarden.protocol import NodeStatus

__all__ = [
    "BatteryLowRule",
    "ClockSkewRule",
    "MaintenanceWindow",
    "NodeRule",
    "NodeStatusRule",
    "QueueBacklogRule",
    "RateOfChangeRule",
    "Rule",
    "RuleError",
    "RuleSet",
    "Scope",
    "Silence",
    "StaleRule",
    "StreamRule",
    "ThresholdRule",
    "parse_duration",
    "parse_rules",
]


class RuleError(AnalyticsError):
    """A rule, silence or maintenance window that cannot be used; the message names which."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration (try '90s', '5m', '1h30m', '2d')")
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError("a duration is a number of seconds or a string such as '5m'")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be finite and not negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _as_tuple(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


Names = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]

_FROZEN = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Scope(BaseModel):
    """Which nodes or streams a rule (or silence) applies to: every listed key must match one of
    its values; an empty or missing key matches anything."""

    model_config = _FROZEN

    node: Names = ()
    role: Names = ()
    site: Names = ()
    room: Names = ()
    sensor_type: Names = ()
    sensor_id: Names = ()

    def matches(
        self,
        node_id: str,
        role: str,
        site: str,
        room: str,
        sensor_type: str | None = None,
        sensor_id: str | None = None,
    ) -> bool:
        return (
            (not self.node or node_id in self.node)
            and (not self.role or role in self.role)
            and (not self.site or site in self.site)
            and (not self.room or room in self.room)
            and (not self.sensor_type or sensor_type in self.sensor_type)
            and (not self.sensor_id or sensor_id in self.sensor_id)
        )


class _RuleBase(BaseModel):
    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=128)
    severity: Literal["info", "warning", "critical"] = "warning"
    description: str = ""
    scope: Scope = Scope()
    #: pending: the condition must hold this long before the alert fires
    for_: Duration = Field(default=0.0, alias="for")
    #: remind this often while firing (``None``: notify once)
    repeat: Duration | None = None
    #: the notification channels (names of ``notify_urls``) this rule notifies; empty: every one
    notify: Names = ()

    @field_validator("repeat")
    @classmethod
    def _positive_repeat(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("repeat must be longer than 0 (leave it out to notify once)")
        return value


class _Levels(_RuleBase):
    """A value compared with a line, with an optional clearing line (hysteresis)."""

    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None

    @model_validator(mode="after")
    def _one_direction(self) -> _Levels:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        if self.above is not None:
            if self.clear_above is not None:
                raise ValueError("'clear_above' goes with 'below'; with 'above' use 'clear_below'")
            if self.clear_below is not None and self.clear_below > self.above:
                raise ValueError("'clear_below' must not be higher than 'above'")
        else:
            if self.clear_below is not None:
                raise ValueError("'clear_below' goes with 'above'; with 'below' use 'clear_above'")
            assert self.below is not None
            if self.clear_above is not None and self.clear_above < self.below:
                raise ValueError("'clear_above' must not be lower than 'below'")
        return self

    @property
    def threshold(self) -> float:
        """The line the value crosses to fire."""
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    @property
    def clear_line(self) -> float:
        """The line the value crosses back to resolve (the threshold itself by default)."""
        if self.above is not None:
            return self.above if self.clear_below is None else self.clear_below
        assert self.below is not None
        return self.below if self.clear_above is None else self.clear_above

    def breaching(self, value: float) -> bool:
        """Beyond the firing line."""
        return value > self.above if self.above is not None else value < self.threshold

    def clear(self, value: float) -> bool:
        """Back past the clearing line."""
        return value < self.clear_line if self.above is not None else value > self.clear_line


class ThresholdRule(_Levels):
    """A stream's value above (or below) a line; optionally N of the last M samples."""

    kind: Literal["threshold"]
    field: str = Field(min_length=1)
    n_of_m: tuple[int, int] | None = None

    @field_validator("n_of_m")
    @classmethod
    def _n_of_m(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1] <= 1000:
            raise ValueError("n_of_m is [N, M] with 1 ≤ N ≤ M ≤ 1000")
        return value


class BatteryLowRule(_Levels):
    """A battery level (``battery_pct`` by default) below a line, 20 % unless set."""

    kind: Literal["battery_low"]
    field: str = "battery_pct"
    below: float | None = 20.0


class RateOfChangeRule(_Levels):
    """How fast a stream's value moves: ``(v_now − v_then) / Δt`` over ``window``, per ``per``."""

    kind: Literal["rate_of_change"]
    field: str = Field(min_length=1)
    window: Duration = 300.0
    per: Duration = 60.0

    @field_validator("window", "per")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be longer than 0")
        return value


class StaleRule(_RuleBase):
    """A stream silent for ``factor`` learned intervals (or for a fixed ``after``)."""

    kind: Literal["stale"]
    field: str | None = None
    factor: float = Field(default=3.0, gt=0)
    after: Duration | None = None
    default_interval: Duration = 60.0


class _NodeRuleBase(_RuleBase):
    @model_validator(mode="after")
    def _node_scope(self) -> _NodeRuleBase:
        if self.scope.sensor_type or self.scope.sensor_id:
            raise ValueError("scope.sensor_type and scope.sensor_id do not apply to node rules")
        return self


class NodeStatusRule(_NodeRuleBase):
    """A node offline (or degraded, with ``statuses = ["degraded", "offline"]``)."""

    kind: Literal["node_status"]
    statuses: tuple[NodeStatus, ...] = (NodeStatus.OFFLINE,)


class ClockSkewRule(_NodeRuleBase, _Levels):
    """A node's estimated clock offset beyond ``above`` seconds either way (30 s unless set)."""

    kind: Literal["clock_skew"]
    above: float | None = 30.0


class QueueBacklogRule(_NodeRuleBase, _Levels):
    """An agent's queue (telemetry metric ``metric``, ``queue_depth`` by default) above a line."""

    kind: Literal["queue_backlog"]
    metric: str = "queue_depth"


StreamRule = ThresholdRule | BatteryLowRule | RateOfChangeRule | StaleRule
NodeRule = NodeStatusRule | ClockSkewRule | QueueBacklogRule
Rule = Annotated[StreamRule | NodeRule, Field(discriminator="kind")]
_RULE: TypeAdapter[StreamRule | NodeRule] = TypeAdapter(Rule)

#: rule kinds evaluated per stream (the others are evaluated per node)
STREAM_KINDS = frozenset({"threshold", "battery_low", "rate_of_change", "stale"})


class Silence(BaseModel):
    """No notifications for the matching alerts between ``starts`` and ``ends`` (one-off)."""

    model_config = _FROZEN

    name: str = ""
    rules: Names = ()  # empty: every rule
    scope: Scope = Scope()
    starts: datetime
    ends: datetime
    comment: str = ""

    @field_validator("starts", "ends")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("a time needs a zone (Z or an offset)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        if self.ends <= self.starts:
            raise ValueError("'ends' must be after 'starts'")
        return self

    def active(self, now: datetime) -> bool:
        return self.starts <= now < self.ends


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MaintenanceWindow(BaseModel):
    """No notifications for the matching alerts during a weekly window (times in UTC)."""

    model_config = _FROZEN

    name: str = ""
    rules: Names = ()
    scope: Scope = Scope()
    days: tuple[Weekday, ...] = _WEEKDAYS
    start: time
    duration: Duration

    @field_validator("duration")
    @classmethod
    def _within_a_week(cls, value: float) -> float:
        if not 0 < value <= 7 * 86400:
            raise ValueError("duration must be longer than 0 and at most 7 days")
        return value

    def active(self, now: datetime) -> bool:
        now = now.astimezone(UTC)
        length = timedelta(seconds=self.duration)
        for days_back in range(8):
            day = now.date() - timedelta(days=days_back)
            if _WEEKDAYS[day.weekday()] not in self.days:
                continue
            begins = datetime.combine(day, self.start.replace(tzinfo=None), UTC)
            if begins <= now < begins + length:
                return True
        return False


class RuleSet(BaseModel):
    """One rules document: rules, silences and maintenance windows."""

    model_config = _FROZEN

    rules: tuple[StreamRule | NodeRule, ...] = ()
    silences: tuple[Silence, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()


def _describe(error: ValidationError, skip: int = 0) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"][skip:]) or "(the entry)"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)


def _entries(doc: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = doc.get(key, ())
    if not isinstance(value, list | tuple):
        raise RuleError(f"{key!r} must be a list of tables ([[{key}]] in TOML)")
    return value


def parse_rules(doc: Mapping[str, Any], channels: Collection[str] | None = None) -> RuleSet:
    """A rules document (``tomllib.load`` output, or JSON) → a :class:`RuleSet`.

    Raises :class:`RuleError` naming the rule and key: ``rule 'attic-too-warm' (rules[2]): above:
    Input should be a valid number``. Rule names must be unique. With ``channels`` (the names of
    the configured notification channels), a rule's ``notify`` may only name those.
    """
    unknown = sorted(set(doc) - {"rules", "silences", "maintenance"})
    if unknown:
        raise RuleError(f"unknown top-level key(s): {', '.join(unknown)}")
    rules: list[StreamRule | NodeRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(_entries(doc, "rules")):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        label = f"rule {name!r} (rules[{index}])" if name else f"rules[{index}]"
        if isinstance(raw, Mapping) and "kind" not in raw:
            raise RuleError(f"{label}: kind: missing (one of {', '.join(_KINDS)})")
        try:
            rule = _RULE.validate_python(raw)
        except ValidationError as error:
            raise RuleError(f"{label}: {_describe(error, skip=1)}") from None
        if rule.name in seen:
            raise RuleError(f"{label}: name: another rule is already called {rule.name!r}")
        if channels is not None:
            unknown = [c for c in rule.notify if c not in channels]
            if unknown:
                known = ", ".join(sorted(channels)) or "none"
                raise RuleError(
                    f"{label}: notify: no notification channel {unknown[0]!r} "
                    f"(configured in notify_urls: {known})"
                )
        seen.add(rule.name)
        rules.append(rule)
    silences = tuple(_parse_each(doc, "silences", Silence))
    maintenance = tuple(_parse_each(doc, "maintenance", MaintenanceWindow))
    return RuleSet(rules=tuple(rules), silences=silences, maintenance=maintenance)


_M = TypeVar("_M", bound=BaseModel)

_KINDS = (
    "threshold",
    "battery_low",
    "rate_of_change",
    "stale",
    "node_status",
    "clock_skew",
    "queue_backlog",
)


def _parse_each(doc: Mapping[str, Any], key: str, model: type[_M]) -> list[_M]:
    out = []
    for index, raw in enumerate(_entries(doc, key)):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        label = f"{key[:-1] if key.endswith('s') else key} {name!r} ({key}[{index}])"
        if not name:
            label = f"{key}[{index}]"
        try:
            out.append(model.model_validate(raw))
        except ValidationError as error:
            raise RuleError(f"{label}: {_describe(error)}") from None
    return out
