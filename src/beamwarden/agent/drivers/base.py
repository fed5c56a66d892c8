"""Room: agent (drivers). The driver model: what a driver is, how it is described and found.

A driver does I/O only and hands back :class:`Sample` values in PROTOCOL.md's vocabulary (decoding
bytes lives in the pure ``beamwarden.sensors`` room). There are two kinds:

* :class:`PollingDriver` — the scheduler calls ``read()`` every ``interval_ms``;
* :class:`StreamingDriver` — the scheduler iterates ``subscribe()``, which yields samples as they
  come (a TCP stream, an MQTT subscription, pulses); when it ends or raises it is subscribed again.

Every driver class carries a :class:`DriverInfo` (name, transport, config model). Drivers are found
through the entry-point group ``beamwarden.drivers`` (name → ``module:Class``); the built-in ones
register there exactly like third-party ones. A config may also name a class directly with
``driver = "package.module:Class"``.

Drivers must not block the event loop: blocking calls go through ``asyncio.to_thread``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib.metadata import entry_points
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from beamwarden.agent.clock import Clock
from beamwarden.agent.errors import DriverError

ENTRY_POINT_GROUP = "beamwarden.drivers"
#: import name → the name to install it by, where they differ
_DISTRIBUTIONS = {"serial": "pyserial"}

#: A payload value: a number, a flag or a short text (PROTOCOL.md's vocabulary fixes the names).
Value = float | int | bool | str


class Transport(StrEnum):
    """How a driver reaches its sensor."""

    SIMULATED = "simulated"
    LOCAL = "local"  # the node itself (psutil, sysfs)
    TCP = "tcp"
    HTTP = "http"
    SERIAL = "serial"
    I2C = "i2c"
    BLE = "ble"
    MQTT = "mqtt"
    SNMP = "snmp"
    GPIO = "gpio"


class DriverConfig(BaseModel):
    """Base of every driver's config model: the driver keys of a ``[[sensor]]`` table.

    Unknown keys are refused, so a misspelt key is an error that names it, not a silent default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def quiet_s(self) -> float:
        """How long a streaming driver may be silent and still be fine (a sensor heard once a
        minute); the sensor's default ``timeout_ms`` is twice this at least."""
        return 0.0


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """What the agent needs to know about a driver before it builds one."""

    name: str
    transport: Transport
    config_model: type[DriverConfig]
    summary: str = ""


@dataclass(frozen=True, slots=True)
class SensorContext:
    """What a driver instance is for: which node, which sensor, and the injected clock."""

    node_id: str
    sensor_type: str
    sensor_id: str
    clock: Clock


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading as a driver produced it; the scheduler adds the node and queues it.

    ``sensor_type`` and ``sensor_id`` default to those of the ``[[sensor]]`` table; a driver that
    hears several devices (a BLE scanner, an MQTT topic tree) sets them per sample.
    """

    payload: dict[str, Value]
    timestamp: datetime
    sensor_type: str | None = None
    sensor_id: str | None = None


class Driver(ABC):
    """What every driver has: its :class:`DriverInfo`, its config, its context and ``close()``."""

    info: ClassVar[DriverInfo]

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        self.config = config
        self.context = context
        #: input that could not be decoded (a garbled line, a bad message): counted, never stored
        self.malformed = 0

    def sample(self, payload: dict[str, Value]) -> Sample:
        """A sample of this sensor, stamped now (on the injected clock)."""
        return Sample(payload, self.context.clock.now())

    async def close(self) -> None:  # noqa: B027 (optional hook; most drivers hold nothing)
        """Release what the driver holds (ports, sockets). Called once, on shutdown."""


class PollingDriver(Driver):
    """A driver the scheduler asks every ``interval_ms``."""

    @abstractmethod
    async def read(self) -> Sequence[Sample]:
        """Read the sensor now. Raise on failure; return ``[]`` when there is nothing to report."""


class StreamingDriver(Driver):
    """A driver that yields samples as they arrive."""

    @abstractmethod
    def subscribe(self) -> AsyncIterator[Sample]:
        """Yield samples until the source ends (then the scheduler subscribes again)."""


DriverClass = type[PollingDriver] | type[StreamingDriver]


def _check_driver_class(obj: object, where: str) -> DriverClass:
    if not isinstance(obj, type) or not issubclass(obj, PollingDriver | StreamingDriver):
        raise DriverError(f"{where} is not a PollingDriver or StreamingDriver subclass")
    info = getattr(obj, "info", None)
    if not isinstance(info, DriverInfo):
        raise DriverError(f"{where} has no DriverInfo in its `info` attribute")
    if getattr(obj, "__abstractmethods__", None):
        raise DriverError(
            f"{where} does not implement {', '.join(sorted(obj.__abstractmethods__))}"
        )
    return obj


def registered_drivers() -> dict[str, str]:
    """The drivers registered in the entry-point group: name → ``module:Class``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_driver(spec: str) -> DriverClass:
    """The driver class a config names: a registered name, or ``package.module:Class``."""
    if ":" not in spec:
        for ep in entry_points(group=ENTRY_POINT_GROUP, name=spec):
            try:
                loaded = ep.load()
            except ModuleNotFoundError as exc:
                package = _DISTRIBUTIONS.get(exc.name or "", exc.name)
                raise DriverError(
                    f"driver {spec!r} needs the Python package {package!r}, which is not "
                    "installed (pip install 'beamwarden[agent]' installs every driver's library)"
                ) from exc
            except Exception as exc:
                raise DriverError(f"driver {spec!r} ({ep.value}) cannot be loaded: {exc}") from exc
            return _check_driver_class(loaded, f"driver {spec!r} ({ep.value})")
        known = ", ".join(sorted(registered_drivers())) or "none"
        raise DriverError(f"no driver named {spec!r} is registered (registered: {known})")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise DriverError(f"driver module {module_name!r} cannot be imported: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise DriverError(f"module {module_name!r} has no {attr!r}") from None
    return _check_driver_class(obj, f"driver {spec!r}")
