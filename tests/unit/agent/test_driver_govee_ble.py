"""The Govee BLE driver on recorded advertisements (fixtures/govee_adverts.json) replayed by a fake
scanner: thermometers become climate readings with fleet-wide ids, a phone is skipped quietly, an
error flag is counted, a device is kept once per min_interval_s, and the scan is stopped on close."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from beamwarden.agent.config import parse_config
from beamwarden.agent.drivers import Sample, SensorContext, load_driver
from beamwarden.agent.drivers.govee_ble import GoveeBleConfig, GoveeBleDriver, Heard
from beamwarden.protocol import VOCABULARY
from tests.unit.agent.fakes import START, FakeClock

ADVERTS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "govee_adverts.json").read_text()
)["adverts"]


class FakeScanner:
    def __init__(self, heard: Heard, adapter: str | None) -> None:
        self.heard = heard
        self.adapter = adapter
        self.running = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    def replay(self, advert: dict[str, Any]) -> None:
        assert self.running
        data = AdvertisementData(
            local_name=advert["name"],
            manufacturer_data={
                int(k): bytes.fromhex(v) for k, v in advert["manufacturer_data"].items()
            },
            service_data={},
            service_uuids=[],
            tx_power=None,
            rssi=advert["rssi"],
            platform_data=(),
        )
        self.heard(BLEDevice(advert["address"], advert["name"], None), data)


def driver(clock: FakeClock, **keys: Any) -> tuple[GoveeBleDriver, list[FakeScanner]]:
    d = GoveeBleDriver(
        GoveeBleConfig.model_validate(keys), SensorContext("n-1", "climate", "govee", clock)
    )
    scanners: list[FakeScanner] = []

    def make(heard: Heard, adapter: str | None) -> FakeScanner:
        scanners.append(FakeScanner(heard, adapter))
        return scanners[-1]

    d.open_scanner = make
    return d, scanners


async def replay(clock: FakeClock, d: GoveeBleDriver, scanners: list[FakeScanner]) -> list[Sample]:
    stream = d.subscribe()
    samples: list[Sample] = []
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    for advert in ADVERTS:
        await clock.advance(advert["t"] - clock.t)
        scanners[-1].replay(advert)
        await asyncio.sleep(0)
        if waiting.done():
            samples.append(waiting.result())
            waiting = asyncio.ensure_future(anext(stream))
    waiting.cancel()
    await stream.aclose()
    return samples


def at(seconds: float) -> Any:
    return START + timedelta(seconds=seconds)


async def test_recorded_advertisements_become_climate_readings() -> None:
    clock = FakeClock()
    d, scanners = driver(clock, adapter="hci1")
    samples = await replay(clock, d, scanners)
    assert samples == [
        Sample(
            {"temperature_c": 21.3, "humidity_pct": 44.2, "battery_pct": 100, "rssi_dbm": -71},
            at(0),
            sensor_type="climate",
            sensor_id="ble:A4C138276211",
        ),
        Sample(
            {"temperature_c": 25.34, "humidity_pct": 47.96, "battery_pct": 100, "rssi_dbm": -84},
            at(0.9),
            sensor_type="climate",
            sensor_id="ble:E36059235FF4",
        ),
        Sample(
            {"temperature_c": 25.7, "humidity_pct": 17.0, "battery_pct": 100, "rssi_dbm": -90},
            at(1.3),
            sensor_type="climate",
            sensor_id="ble:D03C3C353CD5",
        ),
        # the H5075's advertisement at 2.1 s is within min_interval_s of its first: not kept
        Sample(
            {"temperature_c": -5.3, "humidity_pct": 45.2, "battery_pct": 87, "rssi_dbm": -72},
            at(61),
            sensor_type="climate",
            sensor_id="ble:A4C138276211",
        ),
    ]
    assert all(set(s.payload) <= set(VOCABULARY["climate"]) for s in samples)
    assert (d.heard, d.malformed, d.overflow) == (len(ADVERTS), 1, 0)  # the phone is not counted
    assert (scanners[0].adapter, scanners[0].running) == ("hci1", False)  # stopped on close


async def test_addresses_and_min_interval_filter() -> None:
    clock = FakeClock()
    d, scanners = driver(clock, addresses=["a4-c1-38-27-62-11"], min_interval_s=0)
    samples = await replay(clock, d, scanners)
    assert [s.payload["temperature_c"] for s in samples] == [21.3, 21.3, -5.3]
    assert {s.sensor_id for s in samples} == {"ble:A4C138276211"}


def test_a_quiet_scan_gets_a_long_default_timeout_and_the_driver_registers(tmp_path: Path) -> None:
    config = parse_config(
        {
            "device_id": "n-1",
            "api_url": "http://bw",
            "device_token": "bwn_token123",
            "state_dir": str(tmp_path),
            "sensor": [{"type": "climate", "driver": "govee_ble", "addresses": ["A4C138276211"]}],
        }
    )
    assert config.sensors[0].timeout_s == 300.0  # not 10 s: a scan may hear nothing for minutes
    assert load_driver("govee_ble") is GoveeBleDriver
