"""Screenshots of the dashboard's main pages for docs/img/ (run by hand after a visible change):

    .venv/bin/python tools/dashboard_screenshots.py [--out docs/img]

A server (uvicorn in a thread, SQLite in a temporary folder) with a day of one node's history
(tests/fixtures/fleet_data.py), a fleet of 40 more nodes in every status, a few thermometers heard
by a gateway, an alert rule and a silence; then Debian's Chromium, logged in as an admin, takes
each page at 1280 px (the fleet page also at a phone's 390 px).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.browser import CHROMIUM, log_in
from tests.fixtures.fleet_data import seed_node
from tests.fixtures.live_server import live_server
from tests.fixtures.web import PASSWORD

from beamwarden.protocol import InstanceState
from beamwarden.server.device_records import SeenDevice
from beamwarden.server.records import Heartbeat, OperatorFields, ReportedFields, to_us
from beamwarden.server.services.alerts import AlertService
from beamwarden.server.services.container import Services
from beamwarden.server.services.devices import DeviceEntry
from beamwarden.server.user_records import Role

PAGES = {
    "dashboard-fleet": "/",
    "dashboard-node": "/nodes/node-1",
    "dashboard-sensors": "/sensors",
    "dashboard-devices": "/devices",
    "dashboard-activity": "/activity",
    "dashboard-alerts": "/alerts",
    "dashboard-diagnostics": "/diagnostics",
}
SITES = ("lab", "roof", "basement", "office")
ROLES = ("pi-log", "pi-log", "pi-log", "mqtt-bridge")


async def seed(services: Services, alerts: AlertService) -> None:
    assert services.users is not None
    assert services.devices is not None
    now = services.clock.now()
    now_us = to_us(now)
    await services.users.add_user("admin", PASSWORD, Role.ADMIN)
    await seed_node(services, now, hours=24)
    beats = []
    for i in range(40):
        node_id = f"{SITES[i % 4]}-{ROLES[i % 4].replace('pi-log', 'pi')}-{i:02d}"
        await services.registry.add_node(node_id, ROLES[i % 4])
        await services.store.record_registration(
            node_id,
            ReportedFields(ROLES[i % 4], f"{node_id}.local", f"10.0.{i // 8}.{10 + i}",
                           "2.4.1" if i % 5 else "2.3.0", {"model": "pi4"}),
            now_us - 86_400_000_000,
        )  # fmt: skip
        await services.registry.set_operator_fields(node_id, OperatorFields(site=SITES[i % 4]))
        if i % 13 == 12:
            continue  # never heard: unknown
        age_s = 5 if i % 7 else (90 if i % 2 else 900)  # online, degraded or offline
        beats.append(
            Heartbeat(
                node_id=node_id, ts_us=now_us - age_s * 1_000_000, received_us=now_us - age_s * 1_000_000,
                role=ROLES[i % 4], uptime_seconds=3600.0 * (i + 1), software_version="2.4.1",
                ip_address=f"10.0.{i // 8}.{10 + i}", interval_seconds=30.0, protocol_version="1.0",
                instance_id=f"i{i:02d}-7f3a", state=InstanceState.ACTIVE,
                metrics={"cpu_percent": 3.0 + i % 9, "queue_depth": i % 4},
                tags={}, clock_offset_seconds=0.1, clock_samples=5,
            )
        )  # fmt: skip
    await services.store.write_heartbeats(beats)
    seen = [SeenDevice(f"ble:A4C13800{i:04X}", now_us, "omg-hall", model="H5075") for i in range(6)]
    await services.devices.observe(seen)
    await services.devices.flush_seen()
    await services.devices.import_entries(
        [
            DeviceEntry("ble:A4C1380000", name="Freezer", room="kitchen"),
            DeviceEntry("ble:A4C1380001", name="Server room", room="rack-a"),
        ],
        "screenshots",
    )
    rules = {
        "rules": [
            {"name": "warm-kitchen", "kind": "threshold", "field": "temperature_c",
             "above": 26, "clear_below": 24, "for": "2m"},
            {"name": "battery", "kind": "battery_low", "below": 20},
        ]
    }  # fmt: skip
    try:
        await alerts.replace_rules(rules, "screenshots")
        await alerts.step()  # one evaluation now, rather than after the first interval
    except Exception as exc:  # the rule kinds are the alert engine's; a change there shows here
        print(f"alerts not evaluated: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    # a channel to show (nothing listens there: the screenshots send nothing)
    channels = {"notify_urls": {"ops": "json://127.0.0.1:9/hooks/beamwarden"}}
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp), **channels) as live:
        live.call(lambda s: seed(s, live.app.state.alerting.alerts))
        time.sleep(1.5)  # the heartbeat writer and the first alert cycle
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for name, path in PAGES.items():
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                log_in(page, live.url, "admin")
                page.goto(live.url + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=path != "/")
                page.close()
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            log_in(phone, live.url, "admin")
            phone.wait_for_load_state("networkidle")
            phone.screenshot(path=str(args.out / "dashboard-fleet-phone.png"))
            browser.close()
    print("\n".join(str(args.out / f"{n}.png") for n in [*PAGES, "dashboard-fleet-phone"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
