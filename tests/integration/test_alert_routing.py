"""Alert routing (issue 7): a rule's ``notify`` names the channels it goes to (default: every
channel); an unknown channel is refused with 400 naming the rule, and by ``alerts check``. Two
webhook receivers on loopback record what each channel is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from beamwarden.protocol import Scope
from tests.conftest import Server, auth
from tests.integration.test_alerts_flow import Receiver, alerts_of, push, put_rules, reading
from tests.integration.test_cli import cli, db_url, ok, refused

__all__ = ["cli", "db_url"]  # fixtures


@pytest.fixture
def ops() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.httpd.shutdown()
        r.httpd.server_close()


lab = ops  # a second receiver, the same way


@pytest.fixture
def settings_overrides(ops: Receiver, lab: Receiver) -> dict[str, Any]:
    return {
        "notify_urls": {"ops": ops.url, "lab-discord": lab.url},
        "alert_interval_s": 3600,
        "alert_node_status": False,
    }


def rule(name: str, above: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "threshold", "field": "temperature_c", "above": above, **extra}


async def test_each_rule_notifies_the_channels_it_names_and_by_default_every_one(
    server: Server, ops: Receiver, lab: Receiver
) -> None:
    assert ops.port != lab.port
    token, admin = await server.node(), await server.user(Scope.ADMIN)
    rules = [
        rule("warm", 30.0, notify="lab-discord"),  # a string is a list of one
        rule("hot", 40.0, notify=["ops", "lab-discord"]),
        rule("melting", 50.0),  # no notify: every channel
        rule("ops-only", 35.0, notify=["ops"]),
    ]
    await put_rules(server, admin, {"rules": rules})
    await push(server, token, [reading(60.0, 1)])
    server.clock.advance(60)
    await alerts_of(server).step()
    titles = {
        "ops": sorted(m.split("\n")[0] for m in ops.messages()),
        "lab": sorted(m.split("\n")[0] for m in lab.messages()),
    }
    subject = "node-1/bme280@0x76/temperature_c"
    assert titles == {
        "ops": [f"[FIRING] {n}: {subject}" for n in ("hot", "melting", "ops-only")],
        "lab": [f"[FIRING] {n}: {subject}" for n in ("hot", "melting", "warm")],
    }
    r = await server.client.get("/api/alert-rules", headers=auth(admin))
    assert r.json()["document"]["rules"][0]["notify"] == "lab-discord"


async def test_a_rule_naming_an_unknown_channel_is_refused_with_400(server: Server) -> None:
    admin = await server.user(Scope.ADMIN)
    doc = {"rules": [rule("ok", 1.0), rule("typo", 2.0, notify=["ops", "lab"])]}
    r = await server.client.put("/api/alert-rules", json=doc, headers=auth(admin))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == (
        "rule 'typo' (rules[1]): notify: no notification channel 'lab' "
        "(configured in notify_urls: lab-discord, ops)"
    )
    r = await server.client.put(
        "/api/alert-rules", json={"rules": [rule("x", 1.0, notify=[3])]}, headers=auth(admin)
    )
    assert r.status_code == 400, r.text


def test_alerts_check_knows_the_channels_of_the_settings(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEAMWARDEN_NOTIFY_URLS", '{"ops": "json://127.0.0.1:9/x"}')
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nname = "attic"\nkind = "stale"\nnotify = ["ops"]\n'
        '[[rules]]\nname = "cellar"\nkind = "stale"\nnotify = ["phone"]\n'
    )
    line = refused(cli, "alerts", "check", str(rules))
    assert line.endswith(
        "rule 'cellar' (rules[1]): notify: no notification channel 'phone' "
        "(configured in notify_urls: ops)"
    )
    rules.write_text('[[rules]]\nname = "attic"\nkind = "stale"\nnotify = ["ops"]\n')
    assert "ops" in ok(cli, "alerts", "check", str(rules))
