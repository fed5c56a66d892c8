"""The built-in drivers against real loopback servers (TCP, HTTP), the machine itself (system),
and their registration through the ``beamwarden.drivers`` entry points."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from beamwarden.agent.clock import SystemClock
from beamwarden.agent.drivers import (
    DriverConfig,
    PollingDriver,
    Sample,
    SensorContext,
    StreamingDriver,
    load_driver,
    registered_drivers,
)
from beamwarden.agent.drivers.http_poll import HttpPollConfig, HttpPollDriver
from beamwarden.agent.drivers.simulator import SimulatorConfig, SimulatorDriver
from beamwarden.agent.drivers.system import SystemConfig, SystemDriver
from beamwarden.agent.drivers.tcp_json import TcpJsonConfig, TcpJsonDriver
from beamwarden.agent.errors import DriverError
from beamwarden.protocol import VOCABULARY


def context(sensor_type: str) -> SensorContext:
    return SensorContext("n-1", sensor_type, sensor_type, SystemClock())


def test_the_built_in_drivers_register_through_entry_points_like_plugins() -> None:
    assert registered_drivers() == {
        "bme280": "beamwarden.agent.drivers.bme280:Bme280Driver",
        "govee_ble": "beamwarden.agent.drivers.govee_ble:GoveeBleDriver",
        "gpio_pulse": "beamwarden.agent.drivers.gpio_pulse:GpioPulseDriver",
        "http_poll": "beamwarden.agent.drivers.http_poll:HttpPollDriver",
        "mightyohm": "beamwarden.agent.drivers.mightyohm:MightyOhmDriver",
        "mqtt": "beamwarden.agent.drivers.mqtt:MqttDriver",
        "simulator": "beamwarden.agent.drivers.simulator:SimulatorDriver",
        "snmp": "beamwarden.agent.drivers.snmp:SnmpDriver",
        "system": "beamwarden.agent.drivers.system:SystemDriver",
        "tcp_json": "beamwarden.agent.drivers.tcp_json:TcpJsonDriver",
    }
    for name, driver in [
        ("simulator", SimulatorDriver),
        ("system", SystemDriver),
        ("tcp_json", TcpJsonDriver),
        ("http_poll", HttpPollDriver),
    ]:
        assert load_driver(name) is driver
        assert driver.info.name == name
        assert issubclass(driver.info.config_model, DriverConfig)
    assert issubclass(TcpJsonDriver, StreamingDriver)
    assert issubclass(HttpPollDriver, PollingDriver)


async def test_the_simulator_speaks_the_vocabulary() -> None:
    geiger = SimulatorDriver(SimulatorConfig(seed=1, per_read=50), context("geiger"))
    climate = SimulatorDriver(SimulatorConfig(values="climate", seed=1), context("climate"))
    for driver, kind in ((geiger, "geiger"), (climate, "climate")):
        for sample in await driver.read():
            assert set(sample.payload) <= set(VOCABULARY[kind])
            assert all(isinstance(v, int | float) and v >= 0 for v in sample.payload.values())
    assert len(await geiger.read()) == 50


async def test_a_numbered_simulator_numbers_every_sample_and_needs_a_free_type() -> None:
    sim = SimulatorDriver(SimulatorConfig(numbered=True, per_read=3), context("sim"))
    first, second = await sim.read(), await sim.read()
    assert [s.payload["sample_no"] for s in [*first, *second]] == [1, 2, 3, 4, 5, 6]
    assert {s.payload["run"] for s in [*first, *second]} == {sim.run}
    with pytest.raises(DriverError, match="free sensor type"):
        SimulatorDriver(SimulatorConfig(numbered=True), context("geiger"))


async def test_the_system_driver_reads_this_machine() -> None:
    (sample,) = await SystemDriver(SystemConfig(), context("system")).read()
    assert {"cpu_percent", "mem_percent", "disk_percent", "load1", "uptime_s"} <= set(
        sample.payload
    )
    assert set(sample.payload) <= set(VOCABULARY["system"])


@pytest.fixture
async def tcp_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    lines: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for line in lines:
            writer.write(line)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, lines


async def test_tcp_json_yields_good_lines_and_counts_the_rest(
    tcp_server: tuple[int, list[bytes]],
) -> None:
    port, lines = tcp_server
    lines += [
        b"# banner line\n",
        b'{"temperature_c": 21.5, "humidity_pct": 40}\n',
        b"\n",
        b"[1, 2]\n",
        b'{"nested": {"x": 1}}\n',
        b'{"payload": {"cpm": 18}, "timestamp": "2026-11-22T08:00:00Z", "sensor_type": "geiger"}\n',
    ]
    driver = TcpJsonDriver(TcpJsonConfig(host="127.0.0.1", port=port), context("climate"))
    samples = [s async for s in driver.subscribe()]
    assert [s.payload for s in samples] == [
        {"temperature_c": 21.5, "humidity_pct": 40},
        {"cpm": 18},
    ]
    assert samples[1] == Sample(
        {"cpm": 18}, datetime(2026, 11, 22, 8, 0, tzinfo=UTC), sensor_type="geiger"
    )
    assert driver.malformed == 3


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = bodies.pop(0) if bodies else b"{}"
        status = b"500 Oops" if body == b"fail" else b"200 OK"
        writer.write(
            b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/current", bodies


async def test_http_poll_reads_a_path_or_mapped_fields(
    http_server: tuple[str, list[bytes]],
) -> None:
    url, bodies = http_server
    doc = json.dumps(
        {"data": {"current": {"temperature_c": 19.5, "ok": True}}, "main": {"temp": 18.25}}
    )
    bodies += [doc.encode(), doc.encode(), b"fail", b'{"data": {}}']
    by_path = HttpPollDriver(HttpPollConfig(url=url, path="data.current"), context("weather"))
    by_fields = HttpPollDriver(
        HttpPollConfig(url=url, fields={"temperature_c": "main.temp"}), context("weather")
    )
    try:
        assert [s.payload for s in await by_path.read()] == [{"temperature_c": 19.5, "ok": True}]
        assert [s.payload for s in await by_fields.read()] == [{"temperature_c": 18.25}]
        with pytest.raises(httpx.HTTPStatusError):
            await by_path.read()
        with pytest.raises(ValueError, match="no usable field"):
            await by_path.read()
    finally:
        await by_path.close()
        await by_fields.close()
