"""The ``snmp`` driver against Debian's snmpd, started by the test on a free loopback port with its
own config (``override`` gives fixed probe values). Without snmpd the tests skip outside CI; under
CI=true they fail instead (``make system-deps`` installs it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from beamwarden.agent.clock import SystemClock
from beamwarden.agent.drivers import Sample, SensorContext, load_driver
from beamwarden.agent.drivers.snmp import SnmpConfig, SnmpDriver
from beamwarden.agent.errors import DriverError

SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None)
if SNMPD is None and os.environ.get("CI") != "true":
    pytest.skip("snmpd is not installed (make system-deps installs it)", allow_module_level=True)

PROBE = "1.3.6.1.4.1.8072.9999.1"
COMMUNITY = "beamtest"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    assert SNMPD is not None, "snmpd is not installed: run make system-deps"
    home = tmp_path_factory.mktemp("snmpd")
    port = free_udp_port()
    conf = home / "snmpd.conf"
    conf.write_text(
        f"agentAddress udp:127.0.0.1:{port}\n"
        f"rocommunity {COMMUNITY} 127.0.0.1\n"
        f"override .{PROBE}.1 integer 215\n"  # tenths of °C
        f"override .{PROBE}.2 unsigned 437\n"  # tenths of %
        f'override .{PROBE}.3 octet_str "101325"\n'
        f'override .{PROBE}.4 octet_str "door open"\n'
    )
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(home / "persist"), "MIBS": ""}
    proc = subprocess.Popen(
        [SNMPD, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(home / "pid")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (home / "pid").exists():
            assert proc.poll() is None, "snmpd exited at start"
            assert time.monotonic() < deadline, "snmpd did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def driver(port: int, **keys: object) -> SnmpDriver:
    config = SnmpConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "community": COMMUNITY, **keys}
    )
    return SnmpDriver(config, SensorContext("n-1", "climate", "rack-3", SystemClock()))


async def read_soon(d: SnmpDriver) -> Sample:
    """The first read after snmpd started (it may need a moment to bind)."""
    for _ in range(50):
        try:
            (sample,) = await d.read()
        except ConnectionError:
            await asyncio.sleep(0.1)
            continue
        return sample
    raise AssertionError("snmpd never answered")


async def test_a_get_of_probe_oids_gives_a_scaled_reading(snmpd: int) -> None:
    d = driver(
        snmpd,
        fields={
            "temperature_c": f"{PROBE}.1",
            "humidity_pct": f".{PROBE}.2",
            "pressure_pa": f"{PROBE}.3",
            "door": f"{PROBE}.4",
            "fan_rpm": f"{PROBE}.9",  # not on this agent: left out, never a zero
        },
        scale={"temperature_c": 0.1, "humidity_pct": 0.1},
    )
    sample = await read_soon(d)
    assert sample.payload == {
        "temperature_c": 21.5,
        "humidity_pct": 43.7,
        "pressure_pa": 101325.0,
        "door": "door open",
    }
    await d.close()


async def test_v1_and_a_wrong_community_and_an_agent_without_the_oids(snmpd: int) -> None:
    v1 = driver(snmpd, version="1", fields={"temperature_c": f"{PROBE}.1"})
    assert (await read_soon(v1)).payload == {"temperature_c": 215}
    await v1.close()
    wrong = driver(
        snmpd, community="nope", request_timeout_s=0.3, retries=0, fields={"t": f"{PROBE}.1"}
    )
    with pytest.raises(ConnectionError, match="No SNMP response"):
        await wrong.read()  # snmpd ignores a wrong community: a timeout
    await wrong.close()
    none = driver(snmpd, fields={"fan_rpm": f"{PROBE}.9"})
    with pytest.raises(DriverError, match="none of the configured OIDs"):
        await none.read()
    await none.close()


def test_the_config_names_bad_oids_and_the_driver_registers() -> None:
    with pytest.raises(ValueError, match="not a numeric OID"):
        SnmpConfig.model_validate({"host": "h", "fields": {"temperature_c": "sysUpTime.0"}})
    assert load_driver("snmp") is SnmpDriver
