"""Room: agent (drivers). The driver model and the built-in drivers (found through entry points)."""

from .base import (
    ENTRY_POINT_GROUP,
    Driver,
    DriverConfig,
    DriverInfo,
    PollingDriver,
    Sample,
    SensorContext,
    StreamingDriver,
    Transport,
    load_driver,
    registered_drivers,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Driver",
    "DriverConfig",
    "DriverInfo",
    "PollingDriver",
    "Sample",
    "SensorContext",
    "StreamingDriver",
    "Transport",
    "load_driver",
    "registered_drivers",
]
