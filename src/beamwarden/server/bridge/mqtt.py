"""Room: server/bridge. The broker side: connect, subscribe, hand every message to the relay.

MQTT 5 first, with the subscriptions' *retain handling* set to "do not send": a broker that
supports it never replays retained values to the bridge. A broker that refuses MQTT 5 is spoken
to in 3.1.1, where retained messages do arrive and the relay skips them by their retain flag
(it checks the flag in both cases). Sessions start clean: a broker must not keep a backlog for the
bridge while it is down, which it would deliver later with the wrong receive time.

The connection is :mod:`.wire`'s lean subscriber: each message goes from the parsed bytes
straight to :meth:`ReadingRelay.accept` (no queue, no task, no message object). Subscriptions
are QoS 0 by default (``BridgeConfig.qos``): gateways publish at QoS 0, and with a clean session
a higher QoS buys nothing but an acknowledgement per message (and Mosquitto's in-flight window of
20 throttled QoS 1 to a few hundred messages/s).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

from .config import BridgeConfig
from .relay import ReadingRelay
from .wire import MQTT_V5, MQTT_V311, UNSUPPORTED_VERSION, BrokerError, Subscription

log = logging.getLogger("beamwarden.bridge")

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0


async def listen(
    config: BridgeConfig,
    relay: ReadingRelay,
    identifier: str,
    on_subscribed: Callable[[int], None] | None = None,
) -> None:
    """Feed ``relay`` every message of the subscriptions until the connection ends (raises
    :class:`~.wire.BrokerError`) or the task is cancelled. ``on_subscribed`` gets the MQTT
    version spoken (:data:`~.wire.MQTT_V5` or :data:`~.wire.MQTT_V311`)."""
    try:
        await _session(config, relay, identifier, MQTT_V5, on_subscribed)
    except BrokerError as exc:
        if exc.reason_code not in UNSUPPORTED_VERSION:
            raise
        log.info("broker %s refuses MQTT 5; using 3.1.1 (retain flag checks only)", config.broker)
        await _session(config, relay, identifier, MQTT_V311, on_subscribed)


async def _session(
    config: BridgeConfig,
    relay: ReadingRelay,
    identifier: str,
    version: int,
    on_subscribed: Callable[[int], None] | None,
) -> None:
    session = await Subscription.open(
        config.host,
        config.port,
        version=version,
        identifier=identifier,
        topics=config.topics,
        qos=config.qos,
        sink=relay.accept,
        username=config.username,
        password=config.password,
        tls=ssl.create_default_context() if config.tls else None,
        keepalive=KEEPALIVE_S,
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    try:
        log.info(
            "bridge subscribed to %s on %s (MQTT %s)",
            ", ".join(config.topics),
            config.broker,
            "5" if version == MQTT_V5 else "3.1.1",
        )
        if on_subscribed is not None:
            on_subscribed(version)
        await session.wait_closed()
    finally:
        session.close()
