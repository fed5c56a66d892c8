"""Room: obs (stands alone, pure). What is stored: log records and metric samples, and their rules.

A log record has a level from the fixed set (:mod:`.levels`), a message of at most
:data:`MAX_MESSAGE_CHARS` characters (longer ones are cut and say so in ``attrs["truncated"]``),
and JSON-safe attributes: ``None``, booleans, integers that fit in 64 bits, finite floats,
strings, lists and string-keyed dicts, nested at most :data:`MAX_DEPTH` deep, at most
:data:`MAX_ATTRS_BYTES` once encoded. :func:`new_log_record` refuses anything else
(:class:`InvalidRecord`); with ``coerce=True`` (what the logging handler uses) it turns what does
not fit into strings instead, so a log call never fails.

A metric sample is one value of one series (name + labels) at one time; for a histogram the
value is a :class:`HistogramValue` (cumulative bucket counts, count and sum).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import NamedTuple, TypeAlias

from . import _json
from .errors import InvalidMetric, InvalidRecord
from .levels import Level, parse_level

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
Attrs: TypeAlias = Mapping[str, JsonValue]

#: longer messages are cut to this many characters (``attrs["truncated"]`` = the original length)
MAX_MESSAGE_CHARS = 32_768
#: encoded attributes larger than this are refused (or, coerced, replaced by a note of their size)
MAX_ATTRS_BYTES = 65_536
#: deepest nesting of lists/dicts in attributes
MAX_DEPTH = 16
#: longest logger name kept
MAX_LOGGER_CHARS = 256

_INT64 = (-(2**63), 2**63 - 1)
EMPTY_ATTRS: Attrs = {}


class LogRecord(NamedTuple):
    """One log record. ``id`` is assigned by the store (0 before it is stored); ids only grow."""

    ts: float
    level: Level
    message: str
    logger: str = ""
    attrs: Attrs = EMPTY_ATTRS
    id: int = 0

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "id": self.id,
            "ts": self.ts,
            "level": self.level.label,
            "logger": self.logger,
            "message": self.message,
            "attrs": dict(self.attrs),
        }


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class HistogramValue(NamedTuple):
    """A histogram's state: ``bounds`` are the finite upper bounds; ``counts`` has one more item
    (the ``+Inf`` bucket) and is cumulative, so ``counts[-1]`` is the number of observations."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float

    @property
    def observations(self) -> int:
        return self.counts[-1]

    def as_json(self) -> dict[str, JsonValue]:
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": self.sum}

    @classmethod
    def from_json(cls, data: object) -> HistogramValue:
        if not isinstance(data, dict):
            raise InvalidRecord("a histogram value is an object")
        bounds = tuple(float(b) for b in data["bounds"])
        counts = tuple(int(c) for c in data["counts"])
        if len(counts) != len(bounds) + 1:
            raise InvalidRecord("a histogram has one count more than bounds")
        return cls(bounds, counts, float(data["sum"]))


Labels: TypeAlias = tuple[tuple[str, str], ...]


class MetricSample(NamedTuple):
    """One value of one series at ``ts``. ``labels`` are sorted by name. ``id`` as for logs."""

    ts: float
    name: str
    kind: MetricKind
    labels: Labels
    value: float | HistogramValue
    id: int = 0

    def as_json(self) -> dict[str, JsonValue]:
        value: JsonValue = (
            self.value.as_json() if isinstance(self.value, HistogramValue) else self.value
        )
        return {
            "id": self.id,
            "ts": self.ts,
            "name": self.name,
            "kind": self.kind.value,
            "labels": dict(self.labels),
            "value": value,
        }


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def check_metric_name(name: str) -> str:
    if not _METRIC_NAME.match(name):
        raise InvalidMetric(f"invalid metric name {name[:80]!r}")
    return name


def check_label_name(name: str) -> str:
    if not _LABEL_NAME.match(name) or name.startswith("__") or name == "le":
        raise InvalidMetric(f"invalid label name {name[:80]!r}")
    return name


def labels_key(labels: Labels) -> str:
    """The canonical text of a label set (a JSON object, keys sorted): one series, one key."""
    return _json.dumps_str(dict(labels))


def labels_from_key(key: str) -> Labels:
    data = _json.loads(key)
    if not isinstance(data, dict):
        raise InvalidRecord("labels are a JSON object")
    return tuple(sorted((str(k), str(v)) for k, v in data.items()))


def _safe(value: object, coerce: bool, depth: int) -> JsonValue:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return int(value)
        if coerce:
            return str(value)
        raise InvalidRecord("integers in attributes must fit in 64 bits")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if coerce:
            return str(value)
        raise InvalidRecord("floats in attributes must be finite")
    if depth >= MAX_DEPTH:
        if coerce:
            return repr(value)[:200]
        raise InvalidRecord(f"attributes nest deeper than {MAX_DEPTH}")
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                if not coerce:
                    raise InvalidRecord("attribute keys are strings")
                key = str(key)
            out[key] = _safe(item, coerce, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_safe(item, coerce, depth + 1) for item in value]
    if coerce:
        return str(value)
    raise InvalidRecord(f"attribute value of type {type(value).__name__} is not JSON-safe")


def json_safe_attrs(attrs: Mapping[str, object], *, coerce: bool = False) -> dict[str, JsonValue]:
    """Check (or with ``coerce`` repair) attributes; the result is a new plain dict."""
    checked = _safe(attrs, coerce, 0)
    assert isinstance(checked, dict)
    if checked:
        size = len(_json.dumps(checked))
        if size > MAX_ATTRS_BYTES:
            if not coerce:
                raise InvalidRecord(f"attributes are {size} bytes, more than {MAX_ATTRS_BYTES}")
            return {"attrs_dropped_bytes": size}
    return checked


def cap_message(message: str, attrs: dict[str, JsonValue]) -> str:
    """Cut a too-long message, noting the original length in ``attrs`` (mutated)."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    attrs["truncated"] = len(message)
    return message[:MAX_MESSAGE_CHARS]


def new_log_record(
    level: Level | str,
    message: str,
    *,
    ts: float,
    logger: str = "",
    attrs: Mapping[str, object] | None = None,
    coerce: bool = False,
) -> LogRecord:
    """A checked record. ``level`` is a :class:`Level` or its name in any case."""
    lvl = level if isinstance(level, Level) else parse_level(level)
    if not isinstance(message, str):
        if not coerce:
            raise InvalidRecord("a message is a string")
        message = str(message)
    if not math.isfinite(ts):
        raise InvalidRecord("a timestamp is a finite number of seconds")
    safe = json_safe_attrs(attrs or {}, coerce=coerce)
    message = cap_message(message, safe)
    return LogRecord(ts, lvl, message, logger[:MAX_LOGGER_CHARS], safe)


def new_sample(
    name: str,
    kind: MetricKind | str,
    value: float | HistogramValue,
    *,
    ts: float,
    labels: Mapping[str, str] | Sequence[tuple[str, str]] = (),
) -> MetricSample:
    """A checked sample (name and label names as Prometheus allows them)."""
    check_metric_name(name)
    try:
        kind = MetricKind(kind)
    except ValueError:
        raise InvalidMetric(f"unknown metric kind {str(kind)[:40]!r}") from None
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    normalized = tuple(sorted((check_label_name(k), str(v)) for k, v in pairs))
    if len({k for k, _ in normalized}) != len(normalized):
        raise InvalidMetric("a label name appears twice")
    if kind is MetricKind.HISTOGRAM:
        if not isinstance(value, HistogramValue):
            raise InvalidMetric("a histogram sample carries a HistogramValue")
    elif isinstance(value, HistogramValue) or not math.isfinite(value):
        raise InvalidMetric("a counter or gauge sample carries a finite number")
    elif kind is MetricKind.COUNTER and value < 0:
        raise InvalidMetric("a counter is never negative")
    return MetricSample(ts, name, kind, normalized, value)
