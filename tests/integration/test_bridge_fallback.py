"""The bridge against brokers Mosquitto cannot play: 3.1.1 only, or refusing (scripted, on loopback).

Mosquitto speaks MQTT 5, so the fallback cannot be shown with it: this broker refuses the MQTT 5
CONNECT the way a 3.1.1 broker does (CONNACK code 1), accepts 3.1.1, and — having no retain
handling — replays a retained reading, which the bridge must skip by its retain flag. Refused
credentials or subscriptions are errors the bridge retries later, never a reason to fall back.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

from beamwarden.server.bridge import BridgeConfig, ReadingRelay
from beamwarden.server.bridge.mqtt import listen
from beamwarden.server.bridge.wire import MQTT_V311, BrokerError
from beamwarden.server.services.clock import FakeClock
from beamwarden.server.services.container import Services

ADVERT = json.dumps({"id": "A4:C1:38:12:34:56", "tempc": 21.5}).encode()


def _publish(topic: bytes, payload: bytes, *, retain: bool) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + payload
    return bytes((0x30 | int(retain), len(body))) + body


class _Relay(ReadingRelay):
    """Says when it has had two messages."""

    def __init__(self, services: Services, config: BridgeConfig):
        super().__init__(services, config)
        self.two_messages = asyncio.Event()

    def accept(self, topic: str, payload: bytes, retain: bool) -> None:
        super().accept(topic, payload, retain)
        if self.stats.messages >= 2:
            self.two_messages.set()


async def _packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header, length = await reader.readexactly(2)
    return header, await reader.readexactly(length)


async def test_a_broker_without_mqtt5_is_spoken_to_in_311_and_its_retained_replay_is_skipped() -> (
    None
):
    levels: list[int] = []
    subscriptions: list[bytes] = []

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, connect = await _packet(reader)
            level = connect[6]  # after the protocol name "\x00\x04MQTT"
            levels.append(level)
            if level != 4:
                writer.write(b"\x20\x02\x00\x01")  # unacceptable protocol version
                return
            writer.write(b"\x20\x02\x00\x00")
            _, subscribe = await _packet(reader)
            subscriptions.append(subscribe)
            writer.write(b"\x90\x03" + subscribe[:2] + b"\x00")
            topic = b"home/omg1/BTtoMQTT/A4C138123456"
            writer.write(
                _publish(topic, ADVERT, retain=True) + _publish(topic, ADVERT, retain=False)
            )
            await reader.read()  # until the bridge goes
        finally:
            writer.close()

    server = await asyncio.start_server(broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = FakeClock(datetime(2026, 11, 22, 12, tzinfo=UTC))
    relay = _Relay(
        cast(Services, SimpleNamespace(clock=clock, devices=None)),
        BridgeConfig("127.0.0.1", port, topics=("home/+/BTtoMQTT/#",)),
    )
    versions: list[int] = []
    task = asyncio.create_task(listen(relay.config, relay, "bw-test", versions.append))
    try:
        async with asyncio.timeout(10):
            await relay.two_messages.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        await server.wait_closed()
    assert levels == [5, 4]
    assert versions == [MQTT_V311]
    assert subscriptions == [b"\x00\x01\x00\x11home/+/BTtoMQTT/#\x00"]  # QoS 0, no MQTT 5 options
    assert (relay.stats.retained, relay.buffered) == (1, 1)


@pytest.mark.parametrize(
    ("connack", "suback", "error"),
    [
        (b"\x20\x03\x00\x87\x00", b"", "refused the connection \\(code 0x87\\)"),  # not authorized
        (b"\x20\x03\x00\x00\x00", b"\x87", "refused the subscription to home/#"),
    ],
)
async def test_a_broker_refusing_the_bridge_is_a_broker_error_not_a_fallback(
    connack: bytes, suback: bytes, error: str
) -> None:
    levels: list[int] = []

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, connect = await _packet(reader)
            levels.append(connect[6])
            writer.write(connack)
            if suback:
                _, subscribe = await _packet(reader)
                writer.write(b"\x90\x04" + subscribe[:2] + b"\x00" + suback)
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = _Relay(
        cast(Services, SimpleNamespace(clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))),
        BridgeConfig("127.0.0.1", port, topics=("home/#",), username="u", password="wrong"),
    )
    try:
        with pytest.raises(BrokerError, match=error):
            await listen(relay.config, relay, "bw-test")
    finally:
        server.close()
        await server.wait_closed()
    assert levels == [5]  # MQTT 5 was spoken, and not retried as 3.1.1
