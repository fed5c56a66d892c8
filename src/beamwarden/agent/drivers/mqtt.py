"""Room: agent (drivers). ``mqtt``: JSON readings from an MQTT subscription (aiomqtt; streaming).

The driver connects to the broker, subscribes to ``topic`` (wildcards allowed) and turns each
message into a sample, exactly as ``tcp_json`` turns a line: a flat JSON object of fields (an
optional ``"timestamp"`` beside them) or a reading-like envelope (``payload``, ``timestamp``,
``sensor_id``, ``sensor_type``). A message that is not such an object is counted in ``malformed``
and never stored. With ``id_from_topic = true`` the last topic level names the sensor
(``lab/climate/bme280-2`` → ``sensor_id = "bme280-2"``), for one subscription over many sensors.

A lost connection ends the subscription with an error; the scheduler subscribes again with
backoff. Messages are taken with QoS 1 by default and a persistent session is not used: the
agent's own queue is the durable part, from the moment a message is taken.

Touches: the broker at ``host:port``, nothing else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiomqtt
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
from beamwarden.protocol.vocabulary import SENSOR_ID_RE

log = logging.getLogger("beamwarden.agent.drivers.mqtt")


class MqttConfig(DriverConfig):
    host: str = Field(min_length=1)
    port: int = Field(1883, ge=1, le=65_535)
    topic: str = Field(min_length=1)
    qos: int = Field(1, ge=0, le=2)
    username: str | None = None
    password: str | None = None
    #: the client id (None: a random one per connection)
    client_id: str | None = None
    keepalive_s: int = Field(60, ge=5, le=3600)
    id_from_topic: bool = False
    #: a topic may be quiet for long; the connection's health is the broker's keepalive
    silence_s: float = Field(86_400.0, gt=0)

    def quiet_s(self) -> float:
        return self.silence_s / 2


class MqttDriver(StreamingDriver):
    info = DriverInfo(
        name="mqtt",
        transport=Transport.MQTT,
        config_model=MqttConfig,
        summary="JSON readings from an MQTT topic subscription",
    )

    def __init__(self, config: DriverConfig, context: SensorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, MqttConfig)
        self.settings = config
        self.messages = 0

    def decode(self, topic: str, payload: bytes) -> Sample | None:
        """One message → a sample, or ``None`` (counted as malformed)."""
        self.messages += 1
        try:
            document = json.loads(payload)
        except ValueError:
            document = None
        sample = sample_from_json(document, self.context.clock.now())
        if sample is not None and self.settings.id_from_topic:
            level = topic.rsplit("/", 1)[-1]
            if SENSOR_ID_RE.fullmatch(level) is None:
                sample = None
            else:
                sample = Sample(sample.payload, sample.timestamp, sample.sensor_type, level)
        if sample is None:
            self.malformed += 1
            if self.malformed == 1 or self.malformed % 1000 == 0:
                log.warning(
                    "%s: message on %s is not a JSON reading (%d such so far): %r",
                    self.context.sensor_id,
                    topic,
                    self.malformed,
                    payload[:80],
                )
        return sample

    async def subscribe(self) -> AsyncIterator[Sample]:
        s = self.settings
        async with aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            keepalive=s.keepalive_s,
        ) as client:
            await client.subscribe(s.topic, qos=s.qos)
            async for message in client.messages:
                raw = message.payload
                payload = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
                sample = self.decode(message.topic.value, payload)
                if sample is not None:
                    yield sample
            raise ConnectionError("the broker closed the connection")
