"""Room: server/bridge. The broker side: connect, subscribe, hand every message to the relay.

MQTT 5 first, with the subscriptions' *retain handling* set to "do not send": a broker that
supports it never replays retained values to the bridge. A broker that refuses MQTT 5 is spoken
to in 3.1.1, where retained messages do arrive and the relay skips them by their retain flag
(it checks the flag in both cases). Sessions start clean: a broker must not keep a backlog for the
bridge while it is down, which it would deliver later with the wrong receive time.

Messages go from paho's callback straight to :meth:`ReadingRelay.accept` through the queue class
aiomqtt lets us choose (``queue_type``): no queue, no task per message (measured: aiomqtt's
``client.messages`` iterator held a subscriber to ~4 400 messages/s; the direct hand-over
~15 000). Subscriptions are QoS 0 by default (``BridgeConfig.qos``): gateways publish at QoS 0,
and with a clean session a higher QoS buys nothing but an acknowledgement per message (and
Mosquitto's in-flight window of 20 throttled QoS 1 to a few hundred messages/s).
"""

from __future__ import annotations

import asyncio
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


class _Handover(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, replaced: each message goes to the relay as it is parsed."""

    accept: Callable[[str, bytes, bool], None]

    def put_nowait(self, item: aiomqtt.Message) -> None:
        payload = item.payload
        if not isinstance(payload, bytes):
            payload = b"" if payload is None else str(payload).encode()
        self.accept(item.topic.value, payload, item.retain)


def _handover(relay: ReadingRelay) -> type[_Handover]:
    return type("RelayHandover", (_Handover,), {"accept": staticmethod(relay.accept)})


def _client(
    config: BridgeConfig,
    identifier: str,
    version: aiomqtt.ProtocolVersion,
    queue_type: type[asyncio.Queue[aiomqtt.Message]],
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
        queue_type=queue_type,
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
    async with _client(config, identifier, version, _handover(relay)) as client:
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
        # the queue stays empty (see _Handover): this only waits for the connection to end
        async for _ in client.messages:
            pass
