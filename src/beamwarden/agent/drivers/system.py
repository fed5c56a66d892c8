"""Room: agent (drivers). ``system``: the node's own CPU, memory, disk, temperature, load, uptime.

Emits ``sensor_type = "system"`` fields of PROTOCOL.md's vocabulary (use ``type = "system"``).
The temperature is the first sensor psutil reports, where the platform has one (a Pi's SoC).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

import psutil

from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    PollingDriver,
    Sample,
    SensorContext,
    Transport,
    Value,
)


class SystemConfig(DriverConfig):
    #: the file system whose usage is ``disk_percent``
    disk_path: str = "/"


def system_metrics(disk_path: str, now_s: float) -> dict[str, Value]:
    """The ``system`` fields now (blocking: reads /proc and /sys). ``now_s`` is Unix time."""
    payload: dict[str, Value] = {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "mem_percent": psutil.virtual_memory().percent,
        "disk_percent": psutil.disk_usage(disk_path).percent,
        "load1": round(os.getloadavg()[0], 3),
        "uptime_s": round(max(0.0, now_s - psutil.boot_time()), 1),
    }
    temps = getattr(psutil, "sensors_temperatures", None)
    if temps is not None:
        for entries in temps().values():
            if entries:
                payload["temperature_c"] = entries[0].current
                break
    return payload


class SystemDriver(PollingDriver):
    info = DriverInfo(
        name="system",
        transport=Transport.LOCAL,
        config_model=SystemConfig,
        summary="CPU, memory, disk, temperature, load and uptime of this node (psutil)",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, SystemConfig)
        self.disk_path = config.disk_path

    async def read(self) -> Sequence[Sample]:
        now = self.context.clock.now()
        payload = await asyncio.to_thread(system_metrics, self.disk_path, now.timestamp())
        return [Sample(payload, now)]
