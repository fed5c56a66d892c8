"""Room: server/bridge (imports services, sensors). The MQTT bridge: gateways' messages → readings.

* :mod:`.config` — :class:`BridgeConfig` (broker URL, topics, °F, the bridge's node name);
* :mod:`.dedup` — one advertisement heard by several gateways is stored once;
* :mod:`.relay` — :class:`ReadingRelay`: decode, skip retained, batch, ingest like HTTP does;
* :mod:`.wire` — a lean MQTT 5 / 3.1.1 subscriber (asyncio; parses packets in bulk);
* :mod:`.mqtt` — the broker session (MQTT 5 retain handling, 3.1.1 fallback);
* :mod:`.runner` — :class:`MqttBridge`: the lease ``bridge:<host:port>`` and the session's life.

docs/bridge.md shows a govee2mqtt + OpenMQTTGateway set-up and what it stores.
"""

from .config import (
    DEFAULT_TOPICS,
    BridgeConfig,
    BridgeConfigError,
    bridge_config,
    gateway_node_id,
)
from .relay import BridgeStats, ReadingRelay
from .runner import MqttBridge

__all__ = [
    "DEFAULT_TOPICS",
    "BridgeConfig",
    "BridgeConfigError",
    "BridgeStats",
    "MqttBridge",
    "ReadingRelay",
    "bridge_config",
    "gateway_node_id",
]
