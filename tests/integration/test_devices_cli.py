"""``beamwarden devices list|show|rename|claim|import`` and ``beamwarden bridge`` on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from beamwarden.server.cli import app

GOVEE2MQTT_DEVICES = [  # the shape of govee2mqtt's /api/devices (fields we do not use omitted)
    {"id": "1F:80:A4:C1:38:12:34:56", "sku": "H5075", "name": "Kitchen", "room": "Kitchen"},
    {"id": "2A:11:A4:C1:38:AB:CD:EF", "sku": "H5179", "name": "Cellar", "room": None},
]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("BEAMWARDEN_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.delenv("BEAMWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("BEAMWARDEN_BRIDGE_MQTT_URL", raising=False)
    return CliRunner()


def run(cli: CliRunner, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = cli.invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ok(cli: CliRunner, *args: str, stdin: str | None = None) -> tuple[str, str]:
    code, out, err = run(cli, *args, stdin=stdin)
    assert code == 0, (out, err)
    return out, err


def refused(cli: CliRunner, *args: str, stdin: str | None = None) -> str:
    code, out, err = run(cli, *args, stdin=stdin)
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_import_a_govee2mqtt_list_then_list_rename_claim_and_show(
    cli: CliRunner, tmp_path: Path
) -> None:
    listing = tmp_path / "devices.json"
    listing.write_text(json.dumps(GOVEE2MQTT_DEVICES))
    _, err = ok(cli, "devices", "import", str(listing))
    assert "2 new, 0 updated, 0 unchanged; nothing removed" in err
    out, _ = ok(cli, "devices", "list")
    assert "ble:A4C138123456" in out
    assert "Kitchen" in out
    assert "ble:A4C138ABCDEF" in out
    assert "H5179" in out
    ok(cli, "devices", "rename", "A4:C1:38:12:34:56", "Fridge")
    ok(cli, "devices", "claim", "ble:A4C138ABCDEF", "--site", "lab", "--room", "cellar")
    out, _ = ok(cli, "devices", "show", "govee:1F80A4C138123456")
    assert "name: Fridge" in out
    assert "'Kitchen' → 'Fridge'  (cli)" in out
    # a CSV of our own, read from stdin, updates without claiming
    csv_text = "mac,name,room,site\nA4:C1:38:AB:CD:EF,Cellar 2,,\n"
    _, err = ok(cli, "devices", "import", "-", "--format", "csv", "--no-claim", stdin=csv_text)
    assert "0 new, 1 updated" in err
    out, _ = ok(cli, "devices", "show", "ble:A4C138ABCDEF")
    assert "name: Cellar 2" in out
    assert "room: cellar" in out  # an empty cell sets nothing


def test_an_empty_or_unreadable_list_changes_nothing(cli: CliRunner, tmp_path: Path) -> None:
    listing = tmp_path / "devices.json"
    listing.write_text(json.dumps(GOVEE2MQTT_DEVICES[:1]))
    ok(cli, "devices", "import", str(listing))
    assert "empty" in refused(cli, "devices", "import", "-", stdin="[]")
    assert "not JSON" in refused(cli, "devices", "import", "-", stdin="<html>502</html>")
    assert "item 0" in refused(cli, "devices", "import", "-", stdin='[{"id": "nope"}]')
    assert "cannot read" in refused(cli, "devices", "import", str(tmp_path / "missing.json"))
    out, _ = ok(cli, "devices", "list")
    assert "Kitchen" in out


def test_unknown_devices_and_bridge_settings_are_one_line(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "no device" in refused(cli, "devices", "rename", "ble:000000000001", "x")
    assert "no broker" in refused(cli, "bridge")
    monkeypatch.setenv("BEAMWARDEN_BRIDGE_MQTT_URL", "http://broker:1883")
    assert "scheme" in refused(cli, "bridge")
