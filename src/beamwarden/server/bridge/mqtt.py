"""Room: server/bridge. The broker side: connect, subscribe, hand every message to the relay.

MQTT 5 first, with the subscriptions' *retain handling* set to "do not send": a broker that
supports it never replays retained values to the bridge. A broker that refuses MQTT 5 is spoken
to in 3.1.1, where retained messages do arrive and the relay skips them by their retain flag
(it checks the flag in both cases). Sessions start clean: a broker must not keep a backlog for the
bridge while it is down, which it would deliver later with the wrong receive time.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from .config import BridgeConfig
from .relay import ReadingRelay

log = logging.getLogger("beamwarden.bridge")

#: CONNACK reason codes that mean "not this protocol version" (3.1.1: 1; MQTT 5: 0x84)
_UNSUPPORTED_VERSION = frozenset({1, 0x84})
#: incoming messages aiomqtt queues before it discards (and logs) further ones
MAX_QUEUED_MESSAGES = 200_000


def _client(
    config: BridgeConfig, identifier: str, version: aiomqtt.ProtocolVersion
) -> aiomqtt.Client:
    v5 = version is aiomqtt.ProtocolVersion.V5
    return aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=config.password,
        identifier=identifier,
        protocol=version,
        clean_session=None if v5 else True,
        clean_start=True,
        tls_context=ssl.create_default_context() if config.tls else None,
        keepalive=30,
        timeout=10,
        max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
    )


def _rejects_version(exc: aiomqtt.MqttError) -> bool:
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    return isinstance(value, int) and value in _UNSUPPORTED_VERSION


async def listen(
    config: BridgeConfig,
    relay: ReadingRelay,
    identifier: str,
    on_subscribed: Callable[[aiomqtt.ProtocolVersion], None] | None = None,
) -> None:
    """Feed ``relay`` every message of the subscriptions until the connection ends (raises
    :class:`aiomqtt.MqttError`) or the task is cancelled."""
    version = aiomqtt.ProtocolVersion.V5
    try:
        await _session(config, relay, identifier, version, on_subscribed)
    except aiomqtt.MqttError as exc:
        if not _rejects_version(exc):
            raise
        log.info("broker %s refuses MQTT 5; using 3.1.1 (retain flag checks only)", config.broker)
        await _session(config, relay, identifier, aiomqtt.ProtocolVersion.V311, on_subscribed)


async def _session(
    config: BridgeConfig,
    relay: ReadingRelay,
    identifier: str,
    version: aiomqtt.ProtocolVersion,
    on_subscribed: Callable[[aiomqtt.ProtocolVersion], None] | None,
) -> None:
    async with _client(config, identifier, version) as client:
        for topic in config.topics:
            if version is aiomqtt.ProtocolVersion.V5:
                options = SubscribeOptions(
                    qos=config.qos, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
                )
                await client.subscribe(topic, options=options)
            else:
                await client.subscribe(topic, qos=config.qos)
        log.info(
            "bridge subscribed to %s on %s (MQTT %s)",
            ", ".join(config.topics),
            config.broker,
            "5" if version is aiomqtt.ProtocolVersion.V5 else "3.1.1",
        )
        if on_subscribed is not None:
            on_subscribed(version)
        accept = relay.accept
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                payload = b"" if payload is None else str(payload).encode()
            accept(message.topic.value, payload, message.retain)
