"""The bridge's MQTT subscriber on bytes: packets built and parsed to the spec (no broker)."""

from __future__ import annotations

import asyncio

import pytest

from beamwarden.server.bridge.wire import (
    MQTT_V5,
    MQTT_V311,
    BrokerError,
    SubscriberProtocol,
    connect_packet,
    subscribe_packet,
)


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


def publish(
    topic: str,
    payload: bytes,
    *,
    version: int = MQTT_V5,
    qos: int = 0,
    retain: bool = False,
    packet_id: int = 0,
    properties: bytes = b"",
    dup: bool = False,
) -> bytes:
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw
    if qos:
        body += packet_id.to_bytes(2, "big")
    if version == MQTT_V5:
        body += bytes((len(properties),)) + properties
    body += payload
    header = 0x30 | qos << 1 | int(retain) | (0x08 if dup else 0)
    length = bytearray()
    n = len(body)
    while True:
        n, byte = n >> 7, n & 0x7F
        length.append(byte | 0x80 if n else byte)
        if not n:
            break
    return bytes((header,)) + bytes(length) + body


def session(
    version: int = MQTT_V5,
) -> tuple[SubscriberProtocol, FakeTransport, list[tuple[str, bytes, bool]]]:
    got: list[tuple[str, bytes, bool]] = []
    protocol = SubscriberProtocol(
        version, lambda t, p, r: got.append((t, p, r)), asyncio.get_running_loop()
    )
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, got


def test_connect_is_clean_with_credentials_and_mqtt5_has_no_properties() -> None:
    packet = connect_packet(MQTT_V5, "br-1", keepalive=30, username="u", password="pw")
    assert packet == (
        b"\x10\x18"  # CONNECT, 24 bytes
        b"\x00\x04MQTT\x05"  # protocol name, level 5
        b"\xc2\x00\x1e"  # user name + password + clean start; keep alive 30
        b"\x00"  # no properties: no topic aliases, the session ends with the connection
        b"\x00\x04br-1\x00\x01u\x00\x02pw"
    )
    plain = connect_packet(MQTT_V311, "br-1", keepalive=30, password="ignored without a user")
    assert plain == b"\x10\x10\x00\x04MQTT\x04\x02\x00\x1e\x00\x04br-1"


def test_mqtt5_subscriptions_ask_for_no_retained_messages() -> None:
    v5 = subscribe_packet(MQTT_V5, 1, ("a/#", "b"), 0)
    assert v5 == b"\x82\x0d\x00\x01\x00" + b"\x00\x03a/#\x20" + b"\x00\x01b\x20"
    v3 = subscribe_packet(MQTT_V311, 7, ("a/#",), 1)
    assert v3 == b"\x82\x08\x00\x07\x00\x03a/#\x01"


async def test_messages_are_delivered_in_order_whatever_the_read_boundaries() -> None:
    big = b"x" * 300  # a two-byte remaining length
    stream = (
        b"\x20\x03\x00\x00\x00"  # CONNACK, MQTT 5, no properties
        + b"\x90\x04\x00\x01\x00\x00"  # SUBACK: granted QoS 0
        + publish("home/gw/BTtoMQTT/A", b'{"a":1}', properties=b"\x01\x01")
        + publish("home/gw/LWT", b"online", retain=True)
        + publish("t/big", big)
        + b"\xd0\x00"  # PINGRESP
    )
    for cut in range(len(stream) + 1):
        protocol, _, got = session()
        protocol.data_received(stream[:cut])
        protocol.data_received(stream[cut:])
        assert got == [
            ("home/gw/BTtoMQTT/A", b'{"a":1}', False),
            ("home/gw/LWT", b"online", True),
            ("t/big", big, False),
        ]
        assert protocol.connack.result() == 0
        assert protocol.suback.result() == b"\x00"


async def test_byte_by_byte_mqtt311() -> None:
    protocol, _, got = session(MQTT_V311)
    for byte in publish("a/b", b"21.5", version=MQTT_V311) + b"\x90\x03\x00\x01\x00":
        protocol.data_received(bytes((byte,)))
    assert got == [("a/b", b"21.5", False)]
    assert protocol.suback.result() == b"\x00"


async def test_qos1_is_acknowledged_and_qos2_delivered_once() -> None:
    protocol, transport, got = session()
    protocol.data_received(publish("q/1", b"one", qos=1, packet_id=0x0102))
    assert bytes(transport.written) == b"\x40\x02\x01\x02"  # PUBACK
    transport.written.clear()
    twice = publish("q/2", b"two", qos=2, packet_id=9)
    protocol.data_received(twice + publish("q/2", b"two", qos=2, packet_id=9, dup=True))
    assert bytes(transport.written) == b"\x50\x02\x00\x09" * 2  # PUBREC for each copy
    protocol.data_received(b"\x62\x02\x00\x09")  # PUBREL
    assert bytes(transport.written).endswith(b"\x70\x02\x00\x09")  # PUBCOMP
    protocol.data_received(publish("q/2", b"again", qos=2, packet_id=9))  # the id is free again
    assert got == [("q/1", b"one", False), ("q/2", b"two", False), ("q/2", b"again", False)]


async def test_a_sink_failure_is_logged_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def sink(topic: str, payload: bytes, retain: bool) -> None:
        if payload == b"boom":
            raise RuntimeError("a bug")
        seen.append(topic)

    protocol = SubscriberProtocol(MQTT_V5, sink, asyncio.get_running_loop())
    protocol.connection_made(FakeTransport())  # type: ignore[arg-type]
    protocol.data_received(publish("a", b"boom") + publish("b", b"fine"))
    assert seen == ["b"]
    assert "the bridge failed on a message on a" in caplog.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xe0\x01\x8b", "reason 0x8b"),  # the broker's DISCONNECT: server shutting down
        (b"\x30\xff\xff\xff\xff\x01", "variable byte integer"),
        (b"\x30\x03\x00\x09ab", "longer than its packet"),
        (b"\x20\x01\x00", "malformed CONNACK"),
    ],
)
async def test_a_broken_or_ending_session_fails_every_waiter(data: bytes, reason: str) -> None:
    protocol, transport, _ = session()
    protocol.data_received(data)
    assert transport.aborted
    for future in (protocol.connack, protocol.suback, protocol.closed):
        with pytest.raises(BrokerError, match=reason):
            future.result()


async def test_a_closed_connection_ends_the_session() -> None:
    protocol, _, _ = session()
    protocol.data_received(b"\x20\x03\x00\x00\x00")
    protocol.connection_lost(None)
    assert protocol.connack.result() == 0
    with pytest.raises(BrokerError, match="the broker closed the connection"):
        protocol.closed.result()
