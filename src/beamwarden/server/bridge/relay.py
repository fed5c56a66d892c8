"""Room: server/bridge (imports services, sensors). Gateway messages → the HTTP ingest path, in batches.

:meth:`ReadingRelay.accept` takes one MQTT message (topic, payload, retain flag) and does what is
cheap at once: decode (:func:`beamwarden.sensors.decode_gateway_message`), drop retained readings,
drop copies of a measurement already taken (:class:`~.dedup.RecentReadings`), and buffer the rest.
:meth:`ReadingRelay.flush` then does the I/O for everything buffered: registers gateways it has
not seen as nodes, reports the devices heard to the registry (unknown ones become unclaimed
devices), records availability changes, and calls :meth:`IngestService.ingest` — the same call
``POST /api/readings`` makes — once per gateway and batch.

How readings are named (PROTOCOL.md "Readings"): every reading's ``node_id`` is the bridge's own
node, its ``sensor_id`` the device's fleet-wide id ``ble:<MAC>``, and the call is made as the
gateway's node with the ``relay`` scope, so the store keeps the gateway as the reading's
``source``. The series is ``(ble:<MAC>, field)`` whoever heard it, and because every reading has
the same ``node_id``, the store's duplicate check (opaque ids are unique per node) also catches
one advertisement relayed by two gateways.

Time: a reading keeps the device's own time when the gateway sends one, else the time the bridge
received the message; a retained message (the broker replaying an old value to a new subscriber)
is never stored as a reading, only used to learn a gateway's or device's current availability.

Nothing is dropped silently: :class:`BridgeStats` counts every message by fate, and the logs say
why readings were dropped (a full buffer while the store is down, or readings the schema refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import msgspec

from beamwarden.protocol import SchemaViolation, Scope
from beamwarden.sensors import Availability, AvailabilityKind, DecodeError, decode_gateway_message
from beamwarden.server.device_records import SeenDevice
from beamwarden.server.errors import AlreadyExists, Overloaded, ServerError, StoreUnavailable
from beamwarden.server.records import Principal, to_us
from beamwarden.server.services.container import Services

from .config import BridgeConfig, gateway_node_id
from .dedup import RecentReadings

log = logging.getLogger("beamwarden.bridge")

BRIDGE_ROLE = "mqtt-bridge"
GATEWAY_ROLE = "mqtt-gateway"
_RELAY = frozenset({Scope.NODE, Scope.RELAY})
_encode = msgspec.json.Encoder().encode
_UNSET = object()
#: decode errors logged in full before the log keeps to one line in a thousand
_LOUD_ERRORS = 20


@dataclass
class BridgeStats:
    """What happened to every message, since the bridge started."""

    messages: int = 0
    readings: int = 0  # admitted: first copy of a measurement, not retained
    duplicates: int = 0  # copies of a measurement already taken (another gateway, a repeat)
    retained: int = 0  # retained readings, never stored
    ignored: int = 0  # topics that carry neither a reading nor an availability
    decode_errors: int = 0
    availability: int = 0
    stored: int = 0
    store_duplicates: int = 0
    dropped_buffer_full: int = 0
    dropped_invalid: int = 0
    dropped_refused_gateway: int = 0
    batches: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


#: gateway kinds, told apart by topic: govee2mqtt's, and the ``BTtoMQTT``/``LWT`` format that
#: OpenMQTTGateway and Theengs Gateway share; ``other`` is a topic neither uses
GATEWAY_KINDS = ("govee2mqtt", "openmqttgateway", "other")


def gateway_kind(topic: str) -> str:
    """The kind of gateway that publishes on ``topic`` (the bridge's prefix stripped)."""
    if topic.startswith("gv2mqtt/"):
        return "govee2mqtt"
    if "/BTtoMQTT" in topic or topic.endswith("/LWT"):
        return "openmqttgateway"
    return "other"


@dataclass(slots=True, eq=False)
class KindCounts:
    """What became of the messages of one kind of gateway (``/metrics`` shows these)."""

    received: int = 0
    decoded: int = 0  # readings and availability messages decoded
    stored: int = 0  # readings stored durably (not duplicates)
    duplicates: int = 0  # copies dropped by the bridge, and ids the store already had
    retained: int = 0  # retained readings, never stored
    decode_errors: int = 0


@dataclass(slots=True)
class _Pending:
    gateway: str  # the gateway's node id
    kind: KindCounts
    device: SeenDevice
    reading: dict[str, Any]


@dataclass(slots=True)
class _AvailabilityEvent:
    decoded: Availability
    before: bool | object | None
    at: datetime


class ReadingRelay:
    """Decodes gateway messages and ingests their readings through the services."""

    def __init__(
        self,
        services: Services,
        config: BridgeConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        self._services = services
        self._clock = services.clock
        self.config = config
        self.node_id = config.name
        self.stats = BridgeStats()
        #: the same fates by gateway kind (:data:`GATEWAY_KINDS`)
        self.by_kind: dict[str, KindCounts] = {kind: KindCounts() for kind in GATEWAY_KINDS}
        self._node_ids: dict[str, str] = {}  # gateway name → its node id (a regex each, else)
        self._recent = RecentReadings(int(config.dedup_window_s * 1_000_000))
        self._buffer: list[_Pending] = []
        self._events: list[_AvailabilityEvent] = []
        self._wake = asyncio.Event()
        self._sleep = sleep or asyncio.sleep
        #: node id → (may relay (False: revoked), when it was read from the store, µs)
        self._nodes: dict[str, tuple[bool, int]] = {}
        self._node_recheck_us = int(config.node_recheck_s * 1_000_000)
        #: (kind, subject) → available (True/False/None); what gateways and devices last said
        self.availability: dict[tuple[AvailabilityKind, str], bool | None] = {}
        self._flush_lock = asyncio.Lock()

    def counts(self) -> dict[str, dict[str, int]]:
        """Gateway kind → what became of its messages (``/metrics`` reads this at scrape time)."""
        return {
            kind: {f.name: getattr(c, f.name) for f in fields(c)}
            for kind, c in self.by_kind.items()
        }

    # --- per message (no I/O) ------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def accept(self, topic: str, payload: bytes, retain: bool) -> None:
        """One MQTT message. Cheap: decodes and buffers; :meth:`flush` does the I/O."""
        stats = self.stats
        stats.messages += 1
        prefix = self.config.strip_prefix
        if prefix:
            if not topic.startswith(prefix):
                stats.ignored += 1
                return
            topic = topic[len(prefix) :]
        kind = self.by_kind[gateway_kind(topic)]
        kind.received += 1
        try:
            decoded = decode_gateway_message(topic, payload, fahrenheit=self.config.fahrenheit)
        except DecodeError as exc:
            stats.decode_errors += 1
            kind.decode_errors += 1
            if stats.decode_errors <= _LOUD_ERRORS or stats.decode_errors % 1000 == 0:
                log.warning(
                    "cannot decode a message on %s (%d so far): %s", topic, stats.decode_errors, exc
                )
            return
        if decoded is None:
            stats.ignored += 1
            return
        kind.decoded += 1
        now = self._clock.now()
        if isinstance(decoded, Availability):
            self._availability(decoded, retain, now)
            return
        if retain:
            stats.retained += 1
            kind.retained += 1
            return
        received_us = to_us(now)
        moment = decoded.device_time or now
        ts_us = received_us if decoded.device_time is None else to_us(moment)
        measurement = (
            decoded.temperature_c,
            decoded.humidity_pct,
            decoded.battery_pct,
            None if decoded.device_time is None else ts_us,
        )
        rid = self._recent.admit(decoded.device_id, measurement, received_us, ts_us)
        if rid is None:
            stats.duplicates += 1
            kind.duplicates += 1
            return
        stats.readings += 1
        source = decoded.source
        node = self._node_ids.get(source)
        if node is None:
            node = self._node_ids[source] = gateway_node_id(source)
        self._buffer.append(
            _Pending(
                node,
                kind,
                SeenDevice(
                    decoded.device_id, received_us, source, decoded.vendor_id, decoded.model
                ),
                {
                    "node_id": self.node_id,
                    "sensor_id": decoded.device_id,
                    "sensor_type": decoded.sensor_type,
                    "payload": decoded.payload(),
                    "timestamp": moment,
                    "reading_id": rid,
                },
            )
        )
        if len(self._buffer) > self.config.max_buffer:
            self._drop_oldest(len(self._buffer) - self.config.max_buffer)
        self._wake.set()

    def _availability(self, decoded: Availability, retain: bool, now: datetime) -> None:
        """Remember what a gateway or device said; a live change becomes an activity event. A
        retained message only tells the current state (not when it changed): no event."""
        self.stats.availability += 1
        key = (decoded.kind, decoded.subject)
        before = self.availability.get(key, _UNSET)
        self.availability[key] = decoded.available
        if retain or before == decoded.available:
            return
        self._events.append(_AvailabilityEvent(decoded, before, now))
        self._wake.set()

    def _drop_oldest(self, n: int) -> None:
        del self._buffer[:n]
        self.stats.dropped_buffer_full += n
        log.error(
            "bridge buffer full (%d readings): dropped the %d oldest (%d so far)",
            self.config.max_buffer,
            n,
            self.stats.dropped_buffer_full,
        )

    # --- the I/O -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Flush whenever something is buffered (after ``linger_s``), until cancelled; wait and
        retry while the store is unavailable (readings stay buffered)."""
        delay = 0.5
        while True:
            await self._wake.wait()
            await self._sleep(self.config.linger_s)
            self._wake.clear()
            try:
                await self.flush()
            except (StoreUnavailable, Overloaded) as exc:
                self.stats.last_error = exc.message
                log.warning("bridge cannot store readings now (%s); retrying", exc.message)
                self._wake.set()
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                delay = 0.5

    async def flush(self) -> int:
        """Ingest everything buffered; returns readings stored. Readings that could not be
        stored for lack of a store are put back (and the error raised)."""
        async with self._flush_lock:
            await self._flush_events()
            batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            return await self._ingest_all(batch)

    async def _ingest_all(self, batch: list[_Pending]) -> int:
        devices = self._services.devices
        try:
            for gateway in {p.gateway for p in batch}:
                await self._ensure_node(gateway, GATEWAY_ROLE)
            await self._ensure_node(self.node_id, BRIDGE_ROLE)
            if devices is not None:
                await devices.observe([p.device for p in batch])
        except (StoreUnavailable, Overloaded):
            self._requeue(batch)
            raise
        by_gateway: dict[tuple[str, KindCounts], list[_Pending]] = {}
        for p in batch:
            by_gateway.setdefault((p.gateway, p.kind), []).append(p)
        results = await asyncio.gather(
            *(self._ingest_gateway(g, kind, items) for (g, kind), items in by_gateway.items()),
            return_exceptions=True,
        )
        stored = 0
        failure: BaseException | None = None
        for (_, items), result in zip(by_gateway.items(), results, strict=True):
            if isinstance(result, StoreUnavailable | Overloaded):
                self._requeue(items)
                failure = result
            elif isinstance(result, BaseException):
                self.stats.dropped_invalid += len(items)
                self.stats.last_error = str(result)
                log.error("bridge dropped %d readings: %s", len(items), result)
            else:
                stored += result
        if devices is not None:
            with contextlib.suppress(StoreUnavailable):  # sightings are kept for the next flush
                await devices.flush_seen()
        if failure is not None:
            raise failure
        return stored

    def _requeue(self, items: list[_Pending]) -> None:
        self._buffer[:0] = items
        excess = len(self._buffer) - self.config.max_buffer
        if excess > 0:
            self._drop_oldest(excess)

    async def _ingest_gateway(self, gateway: str, kind: KindCounts, items: list[_Pending]) -> int:
        known = self._nodes.get(gateway)
        if known is None or not known[0]:
            self.stats.dropped_refused_gateway += len(items)
            return 0
        principal = Principal(0, "node", f"bridge:{gateway}", _RELAY, gateway)
        stored = 0
        step = self.config.max_batch
        for start in range(0, len(items), step):
            chunk = [p.reading for p in items[start : start + step]]
            while chunk:
                try:
                    outcome = await self._services.ingest.ingest(principal, _encode(chunk))
                except SchemaViolation as exc:
                    bad = {i.index for i in exc.issues if i.index is not None}
                    if not bad:  # the body as a whole: nothing to single out
                        raise
                    self.stats.dropped_invalid += len(bad)
                    log.error(
                        "bridge dropped %d readings the schema refused: %s", len(bad), exc.issues
                    )
                    chunk = [r for i, r in enumerate(chunk) if i not in bad]
                    continue
                except (StoreUnavailable, Overloaded):
                    # what this gateway stored so far stays stored; the rest is retried
                    del items[:start]
                    raise
                stored += outcome.accepted
                self.stats.stored += outcome.accepted
                self.stats.store_duplicates += outcome.duplicates
                kind.stored += outcome.accepted
                kind.duplicates += outcome.duplicates
                self.stats.batches += 1
                break
        return stored

    async def _ensure_node(self, node_id: str, role: str) -> None:
        """Register the bridge or a gateway as a node the first time; refuse a revoked one.
        What the store says is trusted ``node_recheck_s``, then read again: revoking a gateway
        takes effect within that time, while the bridge runs (as a token's revocation does)."""
        now_us = to_us(self._clock.now())
        known = self._nodes.get(node_id)
        if known is not None and now_us - known[1] < self._node_recheck_us:
            return
        store = self._services.store
        row = await store.get_node(node_id)
        if row is None:
            try:
                await store.create_node(node_id, role, now_us)
            except AlreadyExists:
                pass  # created meanwhile (another bridge)
            else:
                await self._services.activity.record(
                    "node_added",
                    f"node {node_id} added by the MQTT bridge (role {role})",
                    node_id=node_id,
                    actor=f"bridge:{self.node_id}",
                    data={"role": role},
                )
            self._nodes[node_id] = (True, now_us)
            return
        allowed = row.revoked_us is None
        was = None if known is None else known[0]
        if not allowed and was is not False:
            log.error("node %s is revoked: the bridge stores nothing it relays", node_id)
        elif allowed and was is False:
            log.warning("node %s is no longer revoked: the bridge stores what it relays", node_id)
        self._nodes[node_id] = (allowed, now_us)

    async def _flush_events(self) -> None:
        events, self._events = self._events, []
        for i, event in enumerate(events):
            try:
                await self._record(event)
            except ServerError:
                self._events[:0] = events[i:]
                raise

    async def _record(self, event: _AvailabilityEvent) -> None:
        a = event.decoded
        state = {True: "online", False: "offline", None: "unknown"}[a.available]
        was = (
            "unknown before"
            if event.before is _UNSET
            else f"was { ({True: 'online', False: 'offline', None: 'unknown'}[event.before]) }"  # type: ignore[index]
        )
        if a.kind is AvailabilityKind.GATEWAY:
            node = gateway_node_id(a.subject)
            await self._services.activity.record(
                "gateway_availability",
                f"gateway {a.subject} is {state} ({a.status!r}; {was})",
                node_id=node,
                actor=f"bridge:{self.node_id}",
                data={"gateway": a.subject, "available": a.available, "status": a.status},
            )
        else:
            await self._services.activity.record(
                "device_availability",
                f"device {a.subject} is {state} per {a.source} ({a.status!r}; {was})",
                actor=f"bridge:{self.node_id}",
                data={
                    "device_id": a.subject,
                    "available": a.available,
                    "status": a.status,
                    "source": a.source,
                },
            )
