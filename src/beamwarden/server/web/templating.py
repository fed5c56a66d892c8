"""Room: server/web. Jinja2 templates (autoescaped) and the filters pages use to show time.

Every duration shown to a person is computed on the server's clock (never the browser's): pages
receive ages and "running for" durations already computed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from beamwarden.protocol import NodeStatus

#: a status's label and colour class (NetBox style: the choice carries its presentation)
STATUS_STYLE: dict[str, tuple[str, str]] = {
    NodeStatus.ONLINE: ("online", "ok"),
    NodeStatus.DEGRADED: ("degraded", "warn"),
    NodeStatus.OFFLINE: ("offline", "bad"),
    NodeStatus.UNKNOWN: ("unknown", "mute"),
}


def duration(seconds: float | None) -> str:
    """``4h 23m``, ``2d 3h``, ``45s``: two units at most; empty for None."""
    if seconds is None or math.isnan(seconds):
        return ""
    s = max(0, int(seconds))
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def age_class(age: float | None, interval: float) -> str:
    """The colour of a heartbeat age against the node's interval (the status thresholds)."""
    if age is None:
        return "mute"
    if age <= 2 * interval:
        return "ok"
    if age <= 5 * interval:
        return "warn"
    return "bad"


def utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def number(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.{digits}f}"


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("beamwarden.server.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=duration, utc=utc, number=number)
    env.globals.update(STATUS_STYLE=STATUS_STYLE, age_class=age_class)
    return env
