"""Room: protocol (pure, imports no other room). The wire contract v1 of PROTOCOL.md as typed models.

The agent, the MQTT bridge and the server share only this package (and ``sensors``).
"""

from .delivery import StreamSeq, covered, merge_ranges, parse_stream_id, ranges_of
from .errors import BatchTooLarge, Issue, ProtocolError, SchemaViolation, UnsupportedProtocolVersion
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
