"""Room: protocol (pure, imports no other room). The wire contract v1 of PROTOCOL.md as typed models.

The agent, the MQTT bridge and the server share only this package (and ``sensors``).
The pydantic models of :mod:`.messages` are imported on first use: the readings path
(:mod:`.readings`, msgspec) loads without pydantic, which keeps processes that only handle
readings quick to start.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING
from typing import Any as _Any

from .delivery import StreamSeq, covered, merge_ranges, parse_stream_id, ranges_of
from .errors import BatchTooLarge, Issue, ProtocolError, SchemaViolation, UnsupportedProtocolVersion
from .readings import MAX_BATCH, Reading, WireReading, decode_readings
from .versions import CURRENT, VersionVerdict, check_protocol_version
from .vocabulary import (
    VOCABULARY,
    FieldKind,
    FieldSpec,
    GeigerMode,
    InstanceState,
    NodeStatus,
    Scope,
    SensorType,
    is_fleet_wide,
    is_ident,
)

if TYPE_CHECKING:
    from .messages import (
        ErrorEnvelope,
        Event,
        IngestResult,
        NodeRecord,
        Page,
        Registered,
        Registration,
        SeriesBucket,
        StoredReading,
        Telemetry,
    )

_MESSAGES = {
    "ErrorEnvelope",
    "Event",
    "IngestResult",
    "NodeRecord",
    "Page",
    "Registered",
    "Registration",
    "SeriesBucket",
    "StoredReading",
    "Telemetry",
}


def __getattr__(name: str) -> _Any:
    if name in _MESSAGES:
        return getattr(_importlib.import_module(".messages", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CURRENT",
    "MAX_BATCH",
    "VOCABULARY",
    "BatchTooLarge",
    "ErrorEnvelope",
    "Event",
    "FieldKind",
    "FieldSpec",
    "GeigerMode",
    "IngestResult",
    "InstanceState",
    "Issue",
    "NodeRecord",
    "NodeStatus",
    "Page",
    "ProtocolError",
    "Reading",
    "Registered",
    "Registration",
    "SchemaViolation",
    "Scope",
    "SensorType",
    "SeriesBucket",
    "StoredReading",
    "StreamSeq",
    "Telemetry",
    "UnsupportedProtocolVersion",
    "VersionVerdict",
    "WireReading",
    "check_protocol_version",
    "covered",
    "decode_readings",
    "is_fleet_wide",
    "is_ident",
    "merge_ranges",
    "parse_stream_id",
    "ranges_of",
]
