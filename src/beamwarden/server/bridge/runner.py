"""Room: server/bridge. :class:`MqttBridge`: one bridge per broker, holding its lease.

The bridge claims the lease ``bridge:<host:port>`` (:class:`~beamwarden.server.services.leases.LeaseKeeper`)
and subscribes only while it holds it; a second bridge for the same broker (another server
process or ``beamwarden bridge``, sharing the presence store) waits as a standby and takes over
when the holder stops or vanishes (the lease expires ``LEASE_TTL`` after its last renewal). On a
lost lease it unsubscribes at once. A dropped broker connection is retried with backoff.

It runs inside the server (a task of the app's lifespan when ``bridge_mqtt_url`` is set) or on
its own (``beamwarden bridge``); both build it the same way from the services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta

from beamwarden.fleet.leases import Holder, Lease
from beamwarden.server.errors import ServerError
from beamwarden.server.services.container import Services
from beamwarden.server.services.leases import LeaseKeeper

from .config import BridgeConfig
from .mqtt import listen
from .relay import ReadingRelay
from .wire import BrokerError

log = logging.getLogger("beamwarden.bridge")

LEASE_TTL = timedelta(seconds=15)
LEASE_INTERVAL = timedelta(seconds=5)
#: the longest wait between two connection attempts
MAX_BACKOFF_S = 30.0

Listen = Callable[..., Awaitable[None]]


class MqttBridge:
    """The relay, its flusher, the lease and the broker session of one bridge process."""

    def __init__(
        self,
        services: Services,
        config: BridgeConfig,
        *,
        hostname: str | None = None,
        listen_fn: Listen = listen,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        self.config = config
        self.relay = ReadingRelay(services, config)
        self._metrics = services.metrics
        host = hostname or socket.gethostname()
        self.holder = Holder(f"{config.name}@{host}:{os.getpid()}:{secrets.token_hex(3)}", host)
        self._sleep = sleep or asyncio.sleep
        self._listen = listen_fn
        self.keeper = LeaseKeeper(
            services.leases,
            config.lease_name,
            self.holder,
            ttl=LEASE_TTL,
            interval=LEASE_INTERVAL,
            on_acquired=self._acquired,
            on_lost=self._lost,
            sleep=self._sleep,
        )
        self._session: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        """Set while subscribed to the broker (tests and the bench wait on it)."""
        self.protocol: int | None = None
        """The MQTT version spoken (5, or 4 for 3.1.1) once subscribed."""

    @property
    def ingesting(self) -> bool:
        return self._session is not None and not self._session.done()

    async def run(self) -> None:
        """Hold the lease and bridge while holding it, until cancelled; then stop cleanly:
        store what is buffered and release the lease so a standby takes over at once."""
        flusher = asyncio.create_task(self.relay.run(), name="bridge-flusher")
        unwatch = self._metrics.watch_bridge(self.relay.counts)
        try:
            while True:
                await self.keeper.step()
                if self.keeper.held and not self.ingesting:
                    self._start()
                await self._sleep(LEASE_INTERVAL.total_seconds())
        finally:
            unwatch()
            await self._stop_session()
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            with contextlib.suppress(ServerError):
                await self.relay.flush()
            await self.keeper.release()

    async def _acquired(self, lease: Lease) -> None:
        log.info("bridge %s holds %s (epoch %d)", self.holder.holder_id, lease.name, lease.epoch)
        self._start()

    async def _lost(self, reason: str) -> None:
        log.warning("bridge stops ingesting from %s: %s", self.config.broker, reason)
        await self._stop_session()

    def _start(self) -> None:
        if not self.ingesting:
            self._session = asyncio.create_task(self._connect_loop(), name="bridge-session")

    async def _stop_session(self) -> None:
        session, self._session = self._session, None
        self.subscribed.clear()
        if session is not None:
            session.cancel()
            await asyncio.gather(session, return_exceptions=True)

    def _on_subscribed(self, version: int) -> None:
        self.protocol = version
        self.subscribed.set()

    async def _connect_loop(self) -> None:
        delay = 1.0
        identifier = f"{self.config.name}-{secrets.token_hex(4)}"
        while True:
            try:
                await self._listen(self.config, self.relay, identifier, self._on_subscribed)
                delay = 1.0
            except BrokerError as exc:
                self.subscribed.clear()
                self.relay.stats.last_error = f"broker {self.config.broker}: {exc}"
                log.warning(
                    "bridge lost broker %s (%s); retrying in %.0f s", self.config.broker, exc, delay
                )
                await self._sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
