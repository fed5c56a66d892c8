"""Room: fleet (pure; pydantic for validation). How long each stream's readings and rollups are kept.

A *stream* is one sensor of a node (``node``, ``sensor_type``, ``sensor_id``): its raw readings,
its 1-minute and its 1-hour rollups each have a retention in days (0: kept for ever). The policy
is three defaults and an ordered list of overrides::

    raw_days = 30          # the issue's defaults
    minute_days = 365
    hour_days = 0          # kept

    [[overrides]]          # the Geiger counters' raw readings for two years
    sensor_type = "geiger"
    raw_days = 730

    [[overrides]]          # a noisy test node: a week of everything but hours
    node = ["bench-3"]
    raw_days = 7
    minute_days = 7

For each of the three retentions, the **first override that matches the stream and sets it**
decides; when none does, the default. An override matches when every key it gives matches (a key
takes a string or a list); it must give at least one key and set at least one retention.
:func:`cutoff_us` turns days into the time before which data is forgotten, rounded down to the
hour (so rollup buckets are never cut in two). Nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from beamwarden.fleet.alerts.rules import Names
from beamwarden.fleet.poisson import AnalyticsError

__all__ = [
    "RetentionError",
    "RetentionOverride",
    "RetentionPolicy",
    "StreamRetention",
    "cutoff_us",
    "parse_retention",
]

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
_FROZEN = ConfigDict(frozen=True, extra="forbid")
Days = Field(default=None, ge=0, allow_inf_nan=False)


class RetentionError(AnalyticsError):
    """A retention policy that cannot be used; the message names the override and the key."""


@dataclass(frozen=True, slots=True)
class StreamRetention:
    """The retention of one stream in days (0: kept for ever)."""

    raw_days: float
    minute_days: float
    hour_days: float


class RetentionOverride(BaseModel):
    """Retentions for the streams every given key matches."""

    model_config = _FROZEN

    node: Names = ()
    sensor_type: Names = ()
    sensor_id: Names = ()
    raw_days: float | None = Days
    minute_days: float | None = Days
    hour_days: float | None = Days

    @model_validator(mode="after")
    def _useful(self) -> RetentionOverride:
        if not (self.node or self.sensor_type or self.sensor_id):
            raise ValueError("an override names node, sensor_type or sensor_id (or several)")
        if self.raw_days is None and self.minute_days is None and self.hour_days is None:
            raise ValueError("an override sets raw_days, minute_days or hour_days")
        return self

    def matches(self, node: str, sensor_type: str, sensor_id: str) -> bool:
        return (
            (not self.node or node in self.node)
            and (not self.sensor_type or sensor_type in self.sensor_type)
            and (not self.sensor_id or sensor_id in self.sensor_id)
        )


class RetentionPolicy(BaseModel):
    """Defaults (the issue's: raw 30 days, 1-minute rollups a year, 1-hour rollups kept) and
    overrides, first match per retention."""

    model_config = _FROZEN

    raw_days: float = Field(30, ge=0, allow_inf_nan=False)
    minute_days: float = Field(365, ge=0, allow_inf_nan=False)
    hour_days: float = Field(0, ge=0, allow_inf_nan=False)
    overrides: tuple[RetentionOverride, ...] = ()

    def for_stream(self, node: str, sensor_type: str, sensor_id: str) -> StreamRetention:
        raw: float | None = None
        minute: float | None = None
        hour: float | None = None
        for o in self.overrides:
            if (raw is None or minute is None or hour is None) and o.matches(
                node, sensor_type, sensor_id
            ):
                raw = o.raw_days if raw is None else raw
                minute = o.minute_days if minute is None else minute
                hour = o.hour_days if hour is None else hour
        return StreamRetention(
            self.raw_days if raw is None else raw,
            self.minute_days if minute is None else minute,
            self.hour_days if hour is None else hour,
        )


def parse_retention(doc: Mapping[str, Any]) -> RetentionPolicy:
    """A policy document (TOML or JSON shape) → :class:`RetentionPolicy`, or
    :class:`RetentionError` naming the key: ``overrides[1]: raw_days: Input should be greater
    than or equal to 0``."""
    try:
        return RetentionPolicy.model_validate(doc)
    except ValidationError as error:
        parts = []
        for item in error.errors():
            loc = item["loc"]
            where = ".".join(
                f"{p}[{loc[i + 1]}]" if p == "overrides" and i + 1 < len(loc) else str(p)
                for i, p in enumerate(loc)
                if not (isinstance(p, int) and i > 0 and loc[i - 1] == "overrides")
            )
            where = where.replace("].", "]: ", 1) if "overrides[" in where else where
            parts.append(f"{where or '(the policy)'}: {item['msg'].removeprefix('Value error, ')}")
        raise RetentionError("; ".join(parts)) from None


def cutoff_us(now_us: int, days: float) -> int | None:
    """The time before which data kept ``days`` days is forgotten, rounded down to the hour;
    ``None`` for 0 (kept for ever)."""
    if days <= 0 or not math.isfinite(days):
        return None
    cut = now_us - round(days * DAY_US)
    return cut - cut % HOUR_US
