"""``beamwarden retention set|show`` on a SQLite file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.integration.test_cli import cli, db_url, invoke, ok, refused

__all__ = ["cli", "db_url"]  # fixtures


def test_retention_set_replaces_the_policy_and_show_prints_it(
    cli: CliRunner, tmp_path: Path
) -> None:
    code, _, err = invoke(cli, "retention", "show")
    assert code == 0, err
    assert "retention (settings): raw 30 d, 1-minute rollups 365 d, 1-hour rollups kept" in err
    policy = tmp_path / "retention.toml"
    policy.write_text(
        'raw_days = 14\n[[overrides]]\nsensor_type = "geiger"\nraw_days = 730\n'
        '[[overrides]]\nnode = ["bench-3"]\nminute_days = 7\n'
    )
    ok(cli, "retention", "set", str(policy))
    code, out, err = invoke(cli, "retention", "show")
    assert code == 0, err
    assert "retention (api): raw 14 d, 1-minute rollups 365 d" in err
    assert "sensor_type=geiger" in out
    assert "730 d" in out
    assert "node=bench-3" in out
    policy.write_text('[[overrides]]\nsensor_type = "geiger"\nraw_days = -3\n')
    line = refused(cli, "retention", "set", str(policy))
    assert line == "error: overrides[0]: raw_days: Input should be greater than or equal to 0"
