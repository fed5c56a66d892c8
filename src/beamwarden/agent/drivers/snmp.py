"""Room: agent (drivers). ``snmp``: SNMP GET of environment probes in server rooms (polling).

Each read asks one agent (a PDU, a UPS's environment probe, a switch) for a few OIDs in a single
GET (pysnmp, asyncio, SNMP v1 or v2c) and names them by the config's ``fields`` table, field name
→ OID, in PROTOCOL.md's vocabulary (``temperature_c``, ``humidity_pct`` …). Probes usually report
tenths (``215`` for 21.5 °C): ``scale`` multiplies a field. An integer, counter, gauge or time
value is a number; a text value is a number when it reads as one (``"21.5"``), else text. An OID
the agent does not have (``noSuchObject``) is left out of the reading, never stored as zero; when
none answers, the read fails.

Touches: UDP to ``host:port``, nothing else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from pyasn1.type import univ
from pydantic import Field, field_validator
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    PollingDriver,
    Sample,
    SensorContext,
    Transport,
    Value,
)
from beamwarden.agent.errors import DriverError
from beamwarden.protocol.vocabulary import IDENT_PATTERN

_OID = r"^\.?[0-9]+(\.[0-9]+)+$"


class SnmpConfig(DriverConfig):
    host: str = Field(min_length=1)
    port: int = Field(161, ge=1, le=65_535)
    community: str = Field("public", min_length=1)
    version: Literal["1", "2c"] = "2c"
    #: one request's timeout and how often it is retried (the sensor's timeout_ms bounds all)
    request_timeout_s: float = Field(2.0, gt=0, le=60)
    retries: int = Field(1, ge=0, le=5)
    #: field name → numeric OID, e.g. temperature_c = "1.3.6.1.4.1.3854.1.2.2.1.16.1.3.0"
    fields: dict[str, str] = Field(min_length=1, max_length=60)
    #: field name → multiplier (probes often say 215 for 21.5 °C: 0.1)
    scale: dict[str, float] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, oid in value.items():
            if re.fullmatch(IDENT_PATTERN, name) is None:
                raise ValueError(f"{name!r} is not a field name (a-z, 0-9, '.', '_', '-')")
            if re.fullmatch(_OID, oid) is None:
                raise ValueError(f"{name} = {oid!r} is not a numeric OID like 1.3.6.1.2.1.1.3.0")
        return {name: oid.lstrip(".") for name, oid in value.items()}

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: dict[str, float]) -> dict[str, float]:
        for name, factor in value.items():
            if not math.isfinite(factor):
                raise ValueError(f"scale of {name!r} must be a finite number")
        return value


def snmp_value(value: Any, factor: float | None) -> Value | None:
    """A varbind's value as a payload value; ``None`` for noSuchObject and friends."""
    if isinstance(value, univ.Null):  # noSuchObject, noSuchInstance, endOfMibView (pyasn1: text)
        return None
    if isinstance(value, univ.Integer):  # Integer32, Counter32/64, Gauge32, TimeTicks …
        number = int(value)
        return number if factor is None else round(number * factor, 6)
    if isinstance(value, univ.OctetString):
        text = str(value.prettyPrint())
        try:
            parsed = float(text)
        except ValueError:
            return text[:256]
        if not math.isfinite(parsed):
            return None
        return parsed if factor is None else round(parsed * factor, 6)
    return None


class SnmpDriver(PollingDriver):
    info = DriverInfo(
        name="snmp",
        transport=Transport.SNMP,
        config_model=SnmpConfig,
        summary="SNMP GET of probe OIDs (v1/v2c), one reading per poll",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, SnmpConfig)
        self.settings = config
        self.engine: SnmpEngine | None = None
        self.target: UdpTransportTarget | None = None
        self.names = {oid: name for name, oid in config.fields.items()}
        self.objects = [ObjectType(ObjectIdentity(oid)) for oid in config.fields.values()]

    async def read(self) -> Sequence[Sample]:
        s = self.settings
        if self.engine is None:
            self.engine = SnmpEngine()
        if self.target is None:
            self.target = await UdpTransportTarget.create(
                (s.host, s.port), timeout=s.request_timeout_s, retries=s.retries
            )
        error, status, index, binds = await get_cmd(
            self.engine,
            CommunityData(s.community, mpModel=0 if s.version == "1" else 1),
            self.target,
            ContextData(),
            *self.objects,
        )
        if error:
            raise ConnectionError(f"SNMP {s.host}:{s.port}: {error}")
        if status:
            raise DriverError(f"SNMP {s.host}:{s.port} answered {status.prettyPrint()} at {index}")
        payload: dict[str, Value] = {}
        for oid, value in binds:
            name = self.names.get(str(oid))
            if name is None:
                continue
            converted = snmp_value(value, s.scale.get(name))
            if converted is not None:
                payload[name] = converted
        if not payload:
            raise DriverError(f"SNMP {s.host}:{s.port} has none of the configured OIDs")
        return [Sample(payload, self.context.clock.now())]

    async def close(self) -> None:
        if self.engine is not None:
            self.engine.close_dispatcher()
            self.engine = None
