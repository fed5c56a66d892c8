"""``beamwarden alerts check|list``, ``checkins add|list``, ``geiger summary`` on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.integration.test_cli import cli, db_url, invoke, ok, refused

__all__ = ["cli", "db_url"]  # fixtures


def test_alerts_check_accepts_a_good_file_and_names_the_bad_key(
    cli: CliRunner, tmp_path: Path
) -> None:
    good = tmp_path / "rules.toml"
    good.write_text(
        '[[rules]]\nname = "attic"\nkind = "threshold"\nfield = "temperature_c"\n'
        'above = 29.4\nclear_below = 26.7\nfor = "5m"\n'
    )
    out = ok(cli, "alerts", "check", str(good))
    assert "attic" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "hot"\nkind = "threshold"\nfield = "t"\nabove = "x"\n')
    line = refused(cli, "alerts", "check", str(bad))
    assert "rule 'hot' (rules[0]): above:" in line


def test_checkins_add_prints_the_slug_once_and_list_shows_the_check(cli: CliRunner) -> None:
    code, out, err = invoke(cli, "checkins", "add", "nightly", "--every", "1d", "--grace", "1h")
    assert code == 0, err
    slug = out.strip()
    assert slug.startswith("bwc_")
    assert "shown this once" in err
    listed = ok(cli, "checkins", "list")
    assert "nightly" in listed
    assert slug not in listed
    assert "every 86400 s" in listed
    line = refused(cli, "checkins", "add", "nightly", "--every", "1d")
    assert "already called 'nightly'" in line
    ok(cli, "alerts", "list")


def test_geiger_summary_of_an_empty_window(cli: CliRunner) -> None:
    ok(cli, "nodes", "add", "n1", "--role", "pi-log")
    summary = json.loads(ok(cli, "geiger", "summary", "n1", "--window", "5m", "--tube", "SBM-20"))
    assert summary["stats"]["count"] == 0
    assert summary["stats"]["mean"] is None
    assert summary["window_seconds"] == 300.0
