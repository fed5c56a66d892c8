"""A rules file with TOML times (a maintenance window's ``start = 02:00:00``) is imported at start:
the document is stored as JSON, so TOML's times become ISO text and are read back as times."""

from __future__ import annotations

from pathlib import Path

from beamwarden.server.app import create_app
from beamwarden.server.services.alerts import AlertService
from beamwarden.server.settings import ServerSettings
from tests.fixtures.databases import sqlite_url

RULES = """
[[rules]]
name = "warm"
kind = "threshold"
field = "temperature_c"
above = 30

[[maintenance]]
name = "nightly"
start = 02:00:00
duration = "1h"
"""


async def test_a_rules_file_with_times_is_imported_at_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    settings = ServerSettings(
        database_url=sqlite_url(tmp_path), alert_rules_file=rules, gc_freeze=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        alerts: AlertService = app.state.alerting.alerts
        document = (await alerts.rules_document())["document"]
        assert document["maintenance"][0]["start"] == "02:00:00"
        (window,) = (await alerts.ruleset()).maintenance
        assert (window.start.hour, window.start.minute) == (2, 0)
