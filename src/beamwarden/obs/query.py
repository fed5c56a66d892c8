"""Room: obs (stands alone, pure). Queries over stored logs and samples, and parsing them from
the parameters of an HTTP request or the command line.

``since``: seconds since the epoch (``1732280000.5``), an ISO-8601 time (``2026-11-22T12:00:00Z``;
without an offset it is UTC) or a duration back from now (``30s``, ``15m``, ``2h``, ``7d``).
``level``: the lowest level wanted (``warning`` gives warnings, errors and criticals).
``cursor``: the ``id`` of the last item already received; the answer starts after it.
Results are in ``id`` order (the order they were stored), at most ``limit`` of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import InvalidLevel, InvalidQuery
from .levels import Level, parse_level

#: most items one ``/logs`` or ``/metrics`` NDJSON stream returns
MAX_STREAM_LIMIT = 1_000_000
#: most items of one ``.json`` page (built in memory)
MAX_PAGE_LIMIT = 10_000
DEFAULT_LIMIT = 1_000

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])\Z")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True)
class LogQuery:
    since: float | None = None
    min_level: Level | None = None
    after_id: int = 0
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class SampleQuery:
    since: float | None = None
    name: str | None = None
    after_id: int = 0
    limit: int = DEFAULT_LIMIT


def parse_since(text: str, now: float) -> float:
    """See the module docstring; raises :class:`InvalidQuery` (parameter ``since``)."""
    since = _since(text.strip(), now)
    if since < 0:
        raise InvalidQuery("since", "before 1970")
    return since


def _since(text: str, now: float) -> float:
    if not text:
        raise InvalidQuery("since", "empty")
    duration = _DURATION.match(text)
    if duration:
        return now - float(duration.group(1)) * _UNIT[duration.group(2)]
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            raise InvalidQuery("since", "seconds since the epoch are a finite number >= 0")
        return number
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQuery(
            "since", "expected epoch seconds, an ISO-8601 time or a duration like 15m"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError):
        raise InvalidQuery("since", "out of range") from None


def parse_cursor(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise InvalidQuery("cursor", "a cursor is the id of the last item received")
    return int(text)


def parse_limit(text: str, maximum: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidQuery("limit", "a whole number")
    limit = int(text)
    if not 1 <= limit <= maximum:
        raise InvalidQuery("limit", f"between 1 and {maximum}")
    return limit


def single_values(params: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> dict[str, str]:
    """Each parameter at most once, and only the ``allowed`` ones."""
    out: dict[str, str] = {}
    for key, values in params.items():
        if key not in allowed:
            raise InvalidQuery(key[:40], f"unknown parameter; known: {', '.join(allowed)}")
        if len(values) != 1:
            raise InvalidQuery(key, "given more than once")
        out[key] = values[0]
    return out


def log_query_from_params(
    params: Mapping[str, Sequence[str]], now: float, maximum: int = MAX_STREAM_LIMIT
) -> LogQuery:
    values = single_values(params, ("since", "level", "limit", "cursor"))
    level: Level | None = None
    if "level" in values:
        try:
            level = parse_level(values["level"])
        except InvalidLevel as exc:
            raise InvalidQuery("level", str(exc)) from None
    return LogQuery(
        since=parse_since(values["since"], now) if "since" in values else None,
        min_level=level,
        after_id=parse_cursor(values["cursor"]) if "cursor" in values else 0,
        limit=parse_limit(values["limit"], maximum) if "limit" in values else DEFAULT_LIMIT,
    )


def sample_query_from_params(
    params: Mapping[str, Sequence[str]], now: float, maximum: int = MAX_STREAM_LIMIT
) -> SampleQuery:
    values = single_values(params, ("since", "name", "limit", "cursor"))
    name = values.get("name")
    if name is not None and not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name):
        raise InvalidQuery("name", "not a metric name")
    return SampleQuery(
        since=parse_since(values["since"], now) if "since" in values else None,
        name=name,
        after_id=parse_cursor(values["cursor"]) if "cursor" in values else 0,
        limit=parse_limit(values["limit"], maximum) if "limit" in values else DEFAULT_LIMIT,
    )
