"""Room: protocol (pure). One name and one unit per quantity: sensor kinds, fields, statuses, scopes.

PROTOCOL.md's vocabulary table lives here, once. Known sensor types accept only their listed fields
(so ``temperature`` without a unit, or ``temperature_f``, is refused with a hint); other sensor types
are free, but their field names must still be lower-case snake case, which carries the unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class SensorType(StrEnum):
    """The sensor types whose fields the vocabulary fixes."""

    GEIGER = "geiger"
    CLIMATE = "climate"
    SYSTEM = "system"


class GeigerMode(StrEnum):
    """Integration mode of a Geiger counter's display (LogExp reports it)."""

    SLOW = "SLOW"
    FAST = "FAST"
    INST = "INST"


class NodeStatus(StrEnum):
    """A node's status, computed by the server from the age of its last heartbeat."""

    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class InstanceState(StrEnum):
    """The state an agent instance reports in telemetry."""

    IDLE = "idle"
    STARTING = "starting"
    WARMING = "warming"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Scope(StrEnum):
    """What a credential may do (PROTOCOL.md, "Identity and tokens")."""

    NODE = "node"  # write its own node's data, read its own data
    RELAY = "relay"  # a node token that may also write for other registered nodes
    ENROL = "enrol"  # register a new node id once
    READ = "read"
    METRICS = "metrics"
    ADMIN = "admin"


class FieldKind(StrEnum):
    NUMBER = "number"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: FieldKind
    unit: str
    minimum: float | None = None


_N = FieldKind.NUMBER
_T = FieldKind.TEXT

#: The vocabulary table of PROTOCOL.md: for each known sensor type, its fields.
VOCABULARY: dict[str, dict[str, FieldSpec]] = {
    SensorType.GEIGER: {
        "cps": FieldSpec(_N, "counts/s", 0),
        "cpm": FieldSpec(_N, "counts/min", 0),
        "counts": FieldSpec(_N, "counts", 0),
        "usv_per_hour": FieldSpec(_N, "µSv/h", 0),
        "mode": FieldSpec(_T, ""),
        "tube_type": FieldSpec(_T, ""),
        "firmware_version": FieldSpec(_T, ""),
    },
    SensorType.CLIMATE: {
        "temperature_c": FieldSpec(_N, "°C", -273.15),
        "humidity_pct": FieldSpec(_N, "%", 0),
        "pressure_pa": FieldSpec(_N, "Pa", 0),
        "battery_pct": FieldSpec(_N, "%", 0),
        "rssi_dbm": FieldSpec(_N, "dBm"),
    },
    SensorType.SYSTEM: {
        "cpu_percent": FieldSpec(_N, "%", 0),
        "mem_percent": FieldSpec(_N, "%", 0),
        "disk_percent": FieldSpec(_N, "%", 0),
        "temperature_c": FieldSpec(_N, "°C", -273.15),
        "load1": FieldSpec(_N, "", 0),
        "uptime_s": FieldSpec(_N, "s", 0),
    },
}

#: Names that carry a unit in another spelling, to give a useful hint when refused.
UNIT_HINTS: dict[str, str] = {
    "temperature": "temperature_c",
    "temperature_f": "temperature_c (convert °F to °C)",
    "temp": "temperature_c",
    "humidity": "humidity_pct",
    "pressure": "pressure_pa",
    "pressure_hpa": "pressure_pa (1 hPa = 100 Pa)",
    "battery": "battery_pct",
    "rssi": "rssi_dbm",
    "usv": "usv_per_hour",
    "usvh": "usv_per_hour",
    "microsieverts_per_hour": "usv_per_hour",
    "counts_per_second": "cps",
    "counts_per_minute": "cpm",
    "uptime": "uptime_s",
    "uptime_seconds": "uptime_s",
}

IDENT_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"  # anchored for JSON Schema; Python uses fullmatch
#: node ids, roles and sensor types: 1–64 chars of ``[a-z0-9._-]``, starting with a letter or digit.
IDENT_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: payload field names: lower-case snake case, 1–64 chars; the name carries the unit.
FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: sensor ids: ``geiger-0``, ``bme280@0x76``, ``ble:A4C138123456`` (a scheme prefix = fleet-wide).
SENSOR_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:/-]{0,127}")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9]*:")


def is_ident(value: str) -> bool:
    """Whether ``value`` is a valid node id, role or sensor type."""
    return IDENT_RE.fullmatch(value) is not None


def is_fleet_wide(sensor_id: str) -> bool:
    """A sensor id with a scheme prefix (``ble:…``, ``govee:…``) names one physical device fleet-wide."""
    return _SCHEME_RE.match(sensor_id) is not None
