"""Room: agent (drivers). ``http_poll``: GET a JSON document every interval.

``path`` (dotted, e.g. ``"data.current"``) points at the object whose fields form the payload;
``fields`` instead maps each payload field to a dotted path (``{temperature_c = "main.temp"}``).
A non-2xx answer or a body without a usable field is a failed read (the scheduler backs off).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
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
from beamwarden.agent.drivers.json_values import dig, sample_from_json


class HttpPollConfig(DriverConfig):
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    path: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(10.0, gt=0)


class HttpPollDriver(PollingDriver):
    info = DriverInfo(
        name="http_poll",
        transport=Transport.HTTP,
        config_model=HttpPollConfig,
        summary="GET a JSON document every interval and read fields from it",
    )
    #: tests may put an ``httpx.MockTransport`` here
    transport: httpx.AsyncBaseTransport | None = None

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, HttpPollConfig)
        self.settings = config
        self.client: httpx.AsyncClient | None = None

    async def read(self) -> Sequence[Sample]:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=self.settings.timeout_s,
                headers=self.settings.headers,
                transport=self.transport,
            )
        answer = await self.client.get(self.settings.url)
        answer.raise_for_status()
        document = answer.json()
        now = self.context.clock.now()
        if self.settings.fields:
            payload: dict[str, Value] = {}
            for name, where in self.settings.fields.items():
                value = dig(document, where)
                if isinstance(value, bool | int | float | str):
                    payload[name] = value
            sample = Sample(payload, now) if payload else None
        else:
            sample = sample_from_json(dig(document, self.settings.path), now)
        if sample is None:
            raise ValueError(f"no usable field in the answer of {self.settings.url}")
        return [sample]

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
