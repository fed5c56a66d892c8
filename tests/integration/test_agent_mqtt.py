"""The ``mqtt`` driver against the real Mosquitto on 127.0.0.1:1883 (never skipped when CI=true):
JSON messages on a unique topic tree become samples, garbage is counted and never stored, the last
topic level can name the sensor, and the driver reconnects when subscribed again."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiomqtt
import pytest

from beamwarden.agent.clock import SystemClock
from beamwarden.agent.drivers import Sample, SensorContext, load_driver
from beamwarden.agent.drivers.mqtt import MqttConfig, MqttDriver

BROKER = ("127.0.0.1", 1883)


def broker_up() -> bool:
    try:
        socket.create_connection(BROKER, timeout=1).close()
    except OSError:
        return False
    return True


if os.environ.get("CI") != "true" and not broker_up():
    pytest.skip("no MQTT broker on 127.0.0.1:1883 (CI=true never skips)", allow_module_level=True)


@pytest.fixture
def prefix() -> str:
    return f"beamwarden-test/{secrets.token_hex(6)}"


async def publish(*messages: tuple[str, bytes]) -> None:
    async with aiomqtt.Client(*BROKER) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


async def collect(stream: AsyncIterator[Sample], n: int) -> list[Sample]:
    """The next ``n`` samples, leaving out late copies of the probe."""
    out: list[Sample] = []
    while len(out) < n:
        sample = await asyncio.wait_for(anext(stream), 10)
        if "probe" not in sample.payload:
            out.append(sample)
    return out


async def subscribed(driver: MqttDriver, first_topic: str) -> tuple[AsyncIterator[Sample], Sample]:
    """Start the subscription; keep publishing a probe until it is heard (the SUBACK race)."""
    stream = driver.subscribe()
    waiting = asyncio.ensure_future(anext(stream))
    for _ in range(100):
        await publish((first_topic, b'{"probe": 1}'))
        done, _ = await asyncio.wait({waiting}, timeout=0.1)
        if done:
            return stream, waiting.result()
    raise AssertionError("the subscription never heard the probe")


def driver(**keys: object) -> MqttDriver:
    config = MqttConfig.model_validate({"host": BROKER[0], "port": BROKER[1], **keys})
    return MqttDriver(config, SensorContext("n-1", "climate", "mqtt-0", SystemClock()))


async def test_json_messages_become_samples_and_garbage_is_counted(prefix: str) -> None:
    d = driver(topic=f"{prefix}/#")
    stream, probe = await subscribed(d, f"{prefix}/probe")
    assert probe.payload == {"probe": 1}
    await publish(
        (f"{prefix}/lab", b'{"temperature_c": 21.5, "humidity_pct": 40}'),
        (f"{prefix}/lab", b"not json"),
        (f"{prefix}/lab", b"[1, 2]"),
        (f"{prefix}/lab", b'{"nested": {"a": 1}}'),  # leaves no field
        (
            f"{prefix}/lab",
            json.dumps(
                {
                    "payload": {"pressure_pa": 100_100},
                    "timestamp": "2026-11-22T12:00:00Z",
                    "sensor_id": "bme280@0x76",
                }
            ).encode(),
        ),
    )
    first, second = await collect(stream, 2)
    assert first.payload == {"temperature_c": 21.5, "humidity_pct": 40}
    assert second == Sample(
        {"pressure_pa": 100_100},
        datetime(2026, 11, 22, 12, tzinfo=UTC),
        sensor_type=None,
        sensor_id="bme280@0x76",
    )
    assert d.malformed == 3
    await stream.aclose()


async def test_the_last_topic_level_can_name_the_sensor(prefix: str) -> None:
    d = driver(topic=f"{prefix}/+", id_from_topic=True, qos=0)
    stream, probe = await subscribed(d, f"{prefix}/probe")
    assert probe.sensor_id == "probe"
    await publish((f"{prefix}/bme280-2", b'{"temperature_c": 19.0}'))
    (sample,) = await collect(stream, 1)
    assert (sample.sensor_id, sample.payload) == ("bme280-2", {"temperature_c": 19.0})
    await stream.aclose()
    # subscribing again (what the scheduler does after a lost connection) works
    stream, _ = await subscribed(d, f"{prefix}/again")
    await stream.aclose()


async def test_a_broker_that_is_not_there_fails_the_subscription() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = driver(topic="x/#", port=port)
    with pytest.raises(aiomqtt.MqttError):
        await anext(d.subscribe())
    assert load_driver("mqtt") is MqttDriver
