"""Room: agent (drivers). Turning a JSON document into a :class:`Sample` (tcp_json, http_poll).

An object is either a flat payload (``{"temperature_c": 21.5, "humidity_pct": 40}``, an optional
``"timestamp"`` key beside the fields) or a reading-like envelope ``{"payload": {...},
"timestamp"?, "sensor_id"?, "sensor_type"?}``. Payload values are numbers, booleans or text;
anything else (nested objects, lists, null, NaN) is left out. An object that leaves no field is
malformed (``None``): it is counted by the driver, never stored as an empty or zero reading.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from beamwarden.agent.drivers.base import Sample, Value


def _scalar(value: Any) -> Value | None:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def dig(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``"data.0.value"``; list positions are numbers)."""
    node = document
    for part in path.split(".") if path else []:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def sample_from_json(document: Any, now: datetime) -> Sample | None:
    """A sample from one JSON object, or ``None`` when nothing usable is in it."""
    if not isinstance(document, dict):
        return None
    envelope = isinstance(document.get("payload"), dict)
    fields: dict[str, Any] = document["payload"] if envelope else document
    payload: dict[str, Value] = {}
    for name, value in fields.items():
        if not envelope and name == "timestamp":
            continue
        scalar = _scalar(value)
        if scalar is not None:
            payload[name] = scalar
    if not payload:
        return None
    timestamp = _timestamp(document.get("timestamp")) or now
    sensor_id = document.get("sensor_id") if envelope else None
    sensor_type = document.get("sensor_type") if envelope else None
    return Sample(
        payload,
        timestamp,
        sensor_type=sensor_type if isinstance(sensor_type, str) else None,
        sensor_id=sensor_id if isinstance(sensor_id, str) else None,
    )
