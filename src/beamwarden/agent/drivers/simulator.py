"""Room: agent (drivers). ``simulator``: plausible Geiger or climate values, no hardware.

With ``numbered = true`` every sample also carries ``run`` (random per driver start) and
``sample_no`` (1, 2, …), so a test can check that each reading reached the server exactly once.
Those two fields are not in PROTOCOL.md's vocabulary, so a numbered simulator needs a sensor type
outside it (``type = "sim"``). ``per_read`` makes one read produce many samples (benchmarks).
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

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
from beamwarden.protocol import VOCABULARY

#: µSv/h per CPM of an SBM-20 tube (the usual conversion of hobby counters)
USV_PER_CPM = 0.0057


class SimulatorConfig(DriverConfig):
    values: Literal["geiger", "climate"] = "geiger"
    #: samples per read (1 = one reading per interval)
    per_read: int = Field(1, ge=1, le=100_000)
    numbered: bool = False
    #: fixed seed for repeatable values (None: random)
    seed: int | None = None


class SimulatorDriver(PollingDriver):
    info = DriverInfo(
        name="simulator",
        transport=Transport.SIMULATED,
        config_model=SimulatorConfig,
        summary="Geiger or climate values from a random walk; optionally numbered",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, SimulatorConfig)
        self.settings = config
        if config.numbered and context.sensor_type in VOCABULARY:
            raise DriverError(
                f"a numbered simulator adds fields outside the {context.sensor_type!r} vocabulary;"
                ' use a free sensor type such as type = "sim"'
            )
        self.random = random.Random(config.seed)
        self.run = secrets.token_hex(4)
        self.count = 0
        self.temperature_c = 21.0
        self.humidity_pct = 45.0

    def _geiger(self) -> dict[str, Value]:
        cps = self._poisson(0.4)
        cpm = self._poisson(24.0)
        return {"cps": cps, "cpm": cpm, "usv_per_hour": round(cpm * USV_PER_CPM, 4)}

    def _climate(self) -> dict[str, Value]:
        self.temperature_c = min(35.0, max(5.0, self.temperature_c + self.random.gauss(0, 0.05)))
        self.humidity_pct = min(95.0, max(10.0, self.humidity_pct + self.random.gauss(0, 0.2)))
        return {
            "temperature_c": round(self.temperature_c, 2),
            "humidity_pct": round(self.humidity_pct, 1),
            "pressure_pa": round(101_325 + self.random.gauss(0, 50)),
        }

    def _poisson(self, mean: float) -> int:
        # Knuth's method for small means, a rounded normal beyond (plenty for a simulator)
        if mean > 30:
            return max(0, round(self.random.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.random.random()
            if p <= limit:
                return k
            k += 1

    async def read(self) -> Sequence[Sample]:
        now = self.context.clock.now()
        out: list[Sample] = []
        make = self._geiger if self.settings.values == "geiger" else self._climate
        for _ in range(self.settings.per_read):
            payload = make()
            if self.settings.numbered:
                self.count += 1
                payload["run"] = self.run
                payload["sample_no"] = self.count
            out.append(Sample(payload, now))
        return out
