"""The config: the Pi-Log v2 shape, driver keys validated by the driver, and errors that name the
table, the key and what is wrong — all of them at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from beamwarden.agent.config import (
    DEFAULT_STATE_DIR,
    AgentConfig,
    PushSettings,
    QueueSettings,
    SensorSpec,
    load_config,
    parse_config,
)
from beamwarden.agent.drivers.simulator import SimulatorConfig, SimulatorDriver
from beamwarden.agent.drivers.system import SystemConfig, SystemDriver
from beamwarden.agent.errors import ConfigError
from tests.unit.agent.fakes import ScriptedDriver

EXAMPLE = """
device_id = "beamrider-0001"
api_url = "https://beamwarden.example.org/"
device_token = "bwn_0123456789abcdef"
state_dir = "/srv/pi-log"

[push]
batch_max = 500

[[sensor]]
type = "geiger"
driver = "simulator"
interval_ms = 1000
id = "geiger-0"

[[sensor]]
type = "system"
driver = "system"
interval_ms = 30000
disk_path = "/srv"
"""


def base(**top: Any) -> dict[str, Any]:
    return {
        "device_id": "n-1",
        "api_url": "http://server:8000",
        "device_token": "bwn_secret1",
        **top,
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_the_example_config_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "pi-log.toml"
    path.write_text(EXAMPLE)
    path.chmod(0o444)  # the config may be read-only: state lives elsewhere
    assert load_config(path) == AgentConfig(
        node_id="beamrider-0001",
        api_url="https://beamwarden.example.org",
        device_token="bwn_0123456789abcdef",
        enrolment_key=None,
        role="pi-log",
        state_dir=Path("/srv/pi-log"),
        heartbeat_interval_s=30.0,
        tags={},
        commit_log=None,
        push=PushSettings(batch_max=500),
        queue=QueueSettings(),
        sensors=(
            SensorSpec(
                index=1,
                sensor_type="geiger",
                sensor_id="geiger-0",
                driver_name="simulator",
                driver_class=SimulatorDriver,
                driver_config=SimulatorConfig(),
                interval_s=1.0,
                timeout_s=10.0,
                enabled=True,
            ),
            SensorSpec(
                index=2,
                sensor_type="system",
                sensor_id="system",
                driver_name="system",
                driver_class=SystemDriver,
                driver_config=SystemConfig(disk_path="/srv"),
                interval_s=30.0,
                timeout_s=60.0,
                enabled=True,
            ),
        ),
    )


def test_defaults() -> None:
    config = parse_config(base(enrolment_key="bwe_enrolkey", device_token=None))
    assert (config.state_dir, config.device_token, config.enrolment_key, config.sensors) == (
        DEFAULT_STATE_DIR,
        None,
        "bwe_enrolkey",
        (),
    )


def test_a_driver_named_by_module_and_class() -> None:
    config = parse_config(
        base(sensor=[{"type": "t", "driver": "tests.unit.agent.fakes:ScriptedDriver"}])
    )
    assert config.sensors[0].driver_class is ScriptedDriver


def test_every_problem_names_the_table_and_the_key() -> None:
    found = problems(
        base(
            sensor=[
                {"type": "geiger", "driver": "simulator"},
                {"type": "climate", "driver": "simulator", "valuez": "climate", "per_read": 0},
                {"type": "x", "driver": "nope"},
                {"type": "Bad Type", "driver": "system", "interval_ms": 0},
                {"driver": "system"},
            ]
        )
    )
    assert found == [
        "sensor[2].per_read: input should be greater than or equal to 1 (a key of driver 'simulator')",
        "sensor[2].valuez: is not a known key (a key of driver 'simulator')",
        "sensor[3].driver: no driver named 'nope' is registered (registered: bme280, govee_ble, "
        "gpio_pulse, http_poll, mightyohm, mqtt, simulator, snmp, system, tcp_json)",
        "sensor[4].type: must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a "
        "letter or digit",
        "sensor[4].interval_ms: input should be greater than 0",
        "sensor[5].type: is required but missing",
    ]


def test_top_level_problems() -> None:
    assert problems(
        {"api_url": "ftp://x", "device_token": "bwn_secret1", "push": {"batch_max": 0}}
    ) == [
        "device_id: is required but missing",
        "push.batch_max: input should be greater than or equal to 1",
    ]
    assert problems(base(api_url="server:8000")) == [
        "api_url: must be an http:// or https:// URL with a host, e.g. https://beamwarden.example.org"
    ]
    assert problems(base(device_token=None)) == [
        "device_token: is required (or enrolment_key, to enrol this node once)"
    ]
    assert problems(base(enrolment_key="bwe_enrolkey")) == [
        "enrolment_key: give device_token or enrolment_key, not both"
    ]
    assert problems(base(colour="blue")) == ["colour: is not a known key"]


def test_two_tables_may_not_share_a_sensor_id() -> None:
    assert problems(
        base(
            sensor=[
                {"type": "geiger", "driver": "simulator"},
                {"type": "geiger", "driver": "simulator"},
            ]
        )
    ) == ["sensor[2].id: 'geiger' is already used by sensor[1]; give each table its own id"]


def test_a_class_that_is_not_a_driver_is_refused() -> None:
    assert problems(base(sensor=[{"type": "t", "driver": "pathlib:Path"}])) == [
        "sensor[1].driver: driver 'pathlib:Path' is not a PollingDriver or StreamingDriver subclass"
    ]
    assert problems(base(sensor=[{"type": "t", "driver": "no.such.module:X"}]))[0].startswith(
        "sensor[1].driver: driver module 'no.such.module' cannot be imported"
    )
    assert problems(base(sensor=[{"type": "t", "driver": "pathlib:Nope"}])) == [
        "sensor[1].driver: module 'pathlib' has no 'Nope'"
    ]


def test_unreadable_or_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('device_id = "x\n')
    with pytest.raises(ConfigError, match="is not valid TOML") as caught:
        load_config(broken)
    assert caught.value.source == str(broken)
