"""Room: server/bridge. What a bridge is told: the broker, the subscriptions, its own name.

Built from :class:`~beamwarden.server.settings.ServerSettings` by the app or the CLI (the bridge
never reads settings itself). ``mqtt://user:password@host:1883`` or ``mqtts://…`` (TLS, port 8883
by default); the password is never logged (:meth:`BridgeConfig.broker`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from beamwarden.server.settings import ServerSettings

#: govee2mqtt's topics, and OpenMQTTGateway's / Theengs Gateway's under their default base ``home``
DEFAULT_TOPICS = ("gv2mqtt/#", "home/+/BTtoMQTT/#", "home/+/LWT")
_SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}
_NODE_UNSAFE = re.compile(r"[^a-z0-9._-]+")


class BridgeConfigError(ValueError):
    """The bridge's settings cannot work (a broker URL it cannot use)."""


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    topics: tuple[str, ...] = DEFAULT_TOPICS
    fahrenheit: bool = False
    """govee2mqtt publishes °F (its ``temperature_scale`` is F)."""
    name: str = "mqtt-bridge"
    """The bridge's node id: readings are stored under it, with the gateway as their source."""
    strip_prefix: str = ""
    """Removed from every topic before decoding (a shared broker with ``site/…`` prefixes)."""
    dedup_window_s: float = 10.0
    """One advertisement heard by several gateways within this long is stored once."""
    node_recheck_s: float = 5.0
    """How long what the store says about a gateway's node (revoked or not) is trusted; the
    server passes its ``token_cache_s``, so revoking a gateway takes effect as soon as revoking
    a token does."""
    qos: int = 0
    """The subscriptions' QoS (see :mod:`.mqtt` for why 0)."""
    linger_s: float = 0.05
    """How long a batch waits for more messages before it is ingested (latency ↔ batch size)."""
    max_batch: int = 5000
    max_buffer: int = 200_000
    """Readings held while the store is unavailable; beyond, the oldest are dropped (counted)."""

    @classmethod
    def from_url(cls, url: str, **options: object) -> BridgeConfig:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise BridgeConfigError(
                f"the broker URL's scheme is mqtt:// or mqtts://, not {parts.scheme!r}"
            )
        default_port, tls = _SCHEMES[parts.scheme]
        if not parts.hostname:
            raise BridgeConfigError("the broker URL names no host")
        try:
            port = parts.port or default_port
        except ValueError:
            raise BridgeConfigError("the broker URL's port is not a number") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **options,  # type: ignore[arg-type]
        )

    @property
    def broker(self) -> str:
        """``host:port``: the broker as logs and the lease name show it."""
        return f"{self.host}:{self.port}"

    @property
    def lease_name(self) -> str:
        """One bridge per broker ingests: the one holding this lease."""
        return f"bridge:{self.broker}"


def gateway_node_id(gateway: str) -> str:
    """A gateway's name (``OMG_ESP32_BLE``, ``govee2mqtt``) → the node id its readings name as
    their source (``omg_esp32_ble``): lower case, other characters become ``-``, 64 at most."""
    node = _NODE_UNSAFE.sub("-", gateway.lower()).strip("-._")[:64]
    return node or "gateway"


def bridge_config(settings: ServerSettings) -> BridgeConfig | None:
    """The bridge the settings ask for, or ``None`` (``bridge_mqtt_url`` unset)."""
    if not settings.bridge_mqtt_url:
        return None
    return BridgeConfig.from_url(
        settings.bridge_mqtt_url,
        topics=tuple(settings.bridge_topics),
        fahrenheit=settings.bridge_fahrenheit,
        name=settings.bridge_name,
        strip_prefix=settings.bridge_topic_prefix,
        dedup_window_s=settings.bridge_dedup_window_s,
        node_recheck_s=settings.token_cache_s,
    )
