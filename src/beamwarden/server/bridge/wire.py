"""Room: server/bridge (asyncio and ssl only). The broker connection: a lean MQTT subscriber.

Why not aiomqtt here (DESIGN.md names it for server-side MQTT): measured with
``bench/bench_bridge.py`` and py-spy, paho (under aiomqtt) reads each packet with several
``recv()`` calls, one packet per event-loop wake-up, and builds ``Properties`` objects for every
MQTT 5 message — more time per message than decoding, deduplicating and storing it together. A
subscriber needs only a handful of packets; :class:`SubscriberProtocol` takes them straight out of
the bytes asyncio hands over (dozens of messages per read) and gives each PUBLISH to a plain
callback. docs/bridge.md has the figures.

What it speaks (OASIS MQTT 5.0 and 3.1.1, client side of a subscriber):

* CONNECT with clean start (MQTT 5: no properties, so no topic aliases and a session that ends
  with the connection), keep alive, user name and password; CONNACK;
* one SUBSCRIBE for every topic: MQTT 5 subscription options carry the QoS and *retain handling*
  2 ("do not send retained messages"); a SUBACK refusing any topic is an error;
* PUBLISH at QoS 0, 1 (PUBACK) or 2 (PUBREC; a resent packet id is not delivered twice; PUBREL →
  PUBCOMP); MQTT 5 publish properties are skipped;
* PINGREQ every half keep alive; a broker silent for 1.5 keep alives is gone;
* DISCONNECT when the session is closed; a broker's DISCONNECT ends the session with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

log = logging.getLogger("beamwarden.bridge")

MQTT_V311 = 4
MQTT_V5 = 5
#: CONNACK codes meaning "not this protocol version" (3.1.1: 1; MQTT 5: 0x84)
UNSUPPORTED_VERSION = frozenset({0x01, 0x84})
#: MQTT 5 retain handling 2 in the subscription options byte: no retained messages at subscribe
_RETAIN_DO_NOT_SEND = 2 << 4
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"

Sink = Callable[[str, bytes, bool], None]
"""Gets each message: topic, payload, retain flag."""


class BrokerError(Exception):
    """The broker refused us, broke the protocol, or the connection ended."""

    def __init__(self, message: str, reason_code: int | None = None):
        super().__init__(message)
        self.reason_code = reason_code


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _str(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) > 0xFFFF:
        raise ValueError("an MQTT string is at most 65 535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def _packet(header: int, body: bytes) -> bytes:
    return bytes((header,)) + _varint(len(body)) + body


def connect_packet(
    version: int,
    identifier: str,
    *,
    keepalive: int,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT with clean start; a password is sent only with a user name (3.1.1's rule)."""
    flags = 0x02
    payload = _str(identifier)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
        if password is not None:
            flags |= 0x40
            payload += _str(password.encode())
    head = _str("MQTT") + bytes((version, flags)) + keepalive.to_bytes(2, "big")
    if version == MQTT_V5:
        head += b"\x00"  # no properties
    return _packet(0x10, head + payload)


def subscribe_packet(version: int, packet_id: int, topics: tuple[str, ...], qos: int) -> bytes:
    options = qos | (_RETAIN_DO_NOT_SEND if version == MQTT_V5 else 0)
    body = packet_id.to_bytes(2, "big") + (b"\x00" if version == MQTT_V5 else b"")
    for topic in topics:
        body += _str(topic) + bytes((options,))
    return _packet(0x82, body)


def _read_varint(data: bytes, i: int, end: int) -> tuple[int, int] | None:
    """(value, index after it), or ``None`` if the bytes end first."""
    value = shift = 0
    while i < end:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7
        if shift > 21:
            raise BrokerError("malformed packet: a variable byte integer longer than 4 bytes")
    return None


@dataclass(eq=False)
class SubscriberProtocol(asyncio.Protocol):
    """One connection's packets. ``sink`` gets every message, in order, as it is parsed."""

    version: int
    sink: Sink
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport | None = None
    last_heard: float = 0.0
    connack: asyncio.Future[int] = field(init=False)
    suback: asyncio.Future[bytes] = field(init=False)
    closed: asyncio.Future[None] = field(init=False)
    _rest: bytes = b""
    _qos2_pending: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.connack = self.loop.create_future()
        self.suback = self.loop.create_future()
        self.closed = self.loop.create_future()

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.last_heard = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "the broker closed the connection"
        self._fail(BrokerError(reason))

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.loop.time()
        if self._rest:
            data = self._rest + data
        try:
            self._rest = data[self._parse(data) :]
        except (BrokerError, IndexError) as exc:
            self._fail(exc if isinstance(exc, BrokerError) else BrokerError("malformed packet"))
            self.abort()

    # --- parsing --------------------------------------------------------------------------------

    def _parse(self, data: bytes) -> int:
        """Handle every whole packet in ``data``; return where the unfinished one starts."""
        pos, end = 0, len(data)
        v5 = self.version == MQTT_V5
        sink = self.sink
        while end - pos >= 2:
            header = data[pos]
            length = data[pos + 1]
            i = pos + 2
            if length & 0x80:
                got = _read_varint(data, pos + 1, end)
                if got is None:
                    break
                length, i = got
            stop = i + length
            if stop > end:
                break
            if header >> 4 == 3:  # PUBLISH: the hot path
                p = i + 2 + (data[i] << 8 | data[i + 1])
                topic = data[i + 2 : p].decode(errors="replace")
                qos = header >> 1 & 3
                if qos:
                    packet_id = data[p] << 8 | data[p + 1]
                    p += 2
                if p + v5 > stop:
                    raise BrokerError("malformed PUBLISH: longer than its packet")
                if v5:
                    props = data[p]
                    p += 1
                    if props & 0x80:
                        got = _read_varint(data, p - 1, stop)
                        if got is None:
                            raise BrokerError("malformed PUBLISH: properties")
                        props, p = got
                    p += props
                if p > stop:
                    raise BrokerError("malformed PUBLISH: longer than its packet")
                if qos == 2:
                    self.send(b"\x50\x02" + packet_id.to_bytes(2, "big"))  # PUBREC
                    if packet_id in self._qos2_pending:
                        pos = stop
                        continue  # a resend: delivered already
                    self._qos2_pending.add(packet_id)
                elif qos == 1:
                    self.send(b"\x40\x02" + packet_id.to_bytes(2, "big"))  # PUBACK
                try:
                    sink(topic, data[p:stop], bool(header & 1))
                except Exception:  # a bug in the sink must not end the session
                    log.exception("the bridge failed on a message on %s", topic)
            else:
                self._control(header, data[i:stop])
            pos = stop
        return pos

    def _control(self, header: int, body: bytes) -> None:
        kind = header >> 4
        if kind == 2:  # CONNACK: flags, reason code[, properties]
            if len(body) < 2:
                raise BrokerError("malformed CONNACK")
            if not self.connack.done():
                self.connack.set_result(body[1])
        elif kind == 9:  # SUBACK: packet id[, properties], one code per topic
            p = 2
            if self.version == MQTT_V5:
                got = _read_varint(body, p, len(body))
                if got is None:
                    raise BrokerError("malformed SUBACK")
                props, p = got
                p += props
            if not self.suback.done():
                self.suback.set_result(body[p:])
        elif kind == 6:  # PUBREL → PUBCOMP: the QoS 2 exchange is over
            packet_id = int.from_bytes(body[:2], "big")
            self._qos2_pending.discard(packet_id)
            self.send(b"\x70\x02" + body[:2])
        elif kind == 14:  # DISCONNECT from the broker (MQTT 5)
            code = body[0] if body else 0
            raise BrokerError(f"the broker disconnected us (reason {code:#04x})", code)
        # PINGRESP (13) and anything else a subscriber does not use: heard, nothing to do

    # --- the rest ---------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, exc: BrokerError) -> None:
        for future in (self.connack, self.suback, self.closed):
            if not future.done():
                future.set_exception(exc)
            # nobody may be waiting for it any more: mark it retrieved
            if not future.cancelled():
                future.exception()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Subscription:
    """An open MQTT session: :meth:`open` connects and subscribes, :meth:`wait_closed` keeps it
    alive until the broker or the network ends it (raises :class:`BrokerError`), :meth:`close`
    says goodbye."""

    def __init__(self, protocol: SubscriberProtocol, keepalive: int):
        self.protocol = protocol
        self.keepalive = keepalive

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        version: int,
        identifier: str,
        topics: tuple[str, ...],
        qos: int,
        sink: Sink,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        keepalive: int = 30,
        connect_timeout: float = 10.0,
    ) -> Subscription:
        loop = asyncio.get_running_loop()
        protocol = SubscriberProtocol(version, sink, loop)
        try:
            async with asyncio.timeout(connect_timeout):
                await loop.create_connection(
                    lambda: protocol, host, port, ssl=tls, server_hostname=host if tls else None
                )
                protocol.send(
                    connect_packet(
                        version,
                        identifier,
                        keepalive=keepalive,
                        username=username,
                        password=password,
                    )
                )
                code = await protocol.connack
                if code:
                    raise BrokerError(f"the broker refused the connection (code {code:#04x})", code)
                protocol.send(subscribe_packet(version, 1, topics, qos))
                codes = await protocol.suback
        except TimeoutError:
            protocol.abort()
            raise BrokerError(
                f"no answer from {host}:{port} within {connect_timeout:g} s"
            ) from None
        except OSError as exc:
            protocol.abort()
            raise BrokerError(f"cannot connect to {host}:{port}: {exc}") from None
        except BaseException:
            protocol.abort()
            raise
        refused = [t for t, c in zip(topics, codes, strict=False) if c >= 0x80]
        if refused or len(codes) != len(topics):
            protocol.abort()
            raise BrokerError(
                f"the broker refused the subscription to {', '.join(refused)}"
                if refused
                else f"the broker answered {len(codes)} codes for {len(topics)} subscriptions"
            )
        return cls(protocol, keepalive)

    async def wait_closed(self) -> None:
        """Ping while the broker is there; raise :class:`BrokerError` when it is not."""
        protocol = self.protocol
        interval = self.keepalive / 2
        while True:
            done, _ = await asyncio.wait((protocol.closed,), timeout=interval)
            if done:
                protocol.closed.result()  # raises the reason
                raise BrokerError("the session ended")  # pragma: no cover - closed always fails
            if protocol.loop.time() - protocol.last_heard > self.keepalive * 1.5:
                protocol.abort()
                raise BrokerError(f"the broker was silent for {self.keepalive * 1.5:g} s")
            protocol.send(_PINGREQ)

    def close(self) -> None:
        protocol = self.protocol
        protocol.send(_DISCONNECT)
        if protocol.transport is not None:
            protocol.transport.close()
        if not protocol.closed.done():
            protocol.closed.cancel()
