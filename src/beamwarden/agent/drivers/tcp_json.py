"""Room: agent (drivers). ``tcp_json``: one JSON object per line from a TCP server (streaming).

The driver connects, yields a sample per line and ends when the server closes the connection (the
scheduler then reconnects with backoff). A line that is not a usable JSON object is counted in
``malformed`` and skipped — never stored as a zero. Silence longer than the sensor's ``timeout_ms``
makes the scheduler drop the connection and reconnect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from pydantic import Field

from beamwarden.agent.drivers.base import (
    DriverConfig,
    DriverInfo,
    Sample,
    SensorContext,
    StreamingDriver,
    Transport,
)
from beamwarden.agent.drivers.json_values import sample_from_json


class TcpJsonConfig(DriverConfig):
    host: str
    port: int = Field(ge=1, le=65_535)
    #: longest line accepted (a longer one is counted as malformed and the connection dropped)
    max_line_bytes: int = Field(65_536, ge=64)


class TcpJsonDriver(StreamingDriver):
    info = DriverInfo(
        name="tcp_json",
        transport=Transport.TCP,
        config_model=TcpJsonConfig,
        summary="JSON lines from a TCP server, one reading per line",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, TcpJsonConfig)
        self.settings = config
        self.malformed = 0

    async def subscribe(self) -> AsyncIterator[Sample]:
        reader, writer = await asyncio.open_connection(
            self.settings.host, self.settings.port, limit=self.settings.max_line_bytes
        )
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the limit: the stream is out of step
                    self.malformed += 1
                    raise ConnectionError("line longer than max_line_bytes") from None
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    document = json.loads(line)
                except ValueError:
                    self.malformed += 1
                    continue
                sample = sample_from_json(document, self.context.clock.now())
                if sample is None:
                    self.malformed += 1
                    continue
                yield sample
        finally:
            writer.close()
