"""Settings: BEAMWARDEN_* variables, an optional TOML file, the environment winning over it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from beamwarden.server.app import create_app
from beamwarden.server.settings import ServerSettings, load_settings


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BEAMWARDEN_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./data/beamwarden.db"
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert settings.max_batch == 10_000
    assert settings.list_limit_default == 100


def test_toml_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "beamwarden.toml"
    config.write_text('database_url = "postgresql://db/bw"\nport = 9000\nmax_batch = 500\n')
    monkeypatch.setenv("BEAMWARDEN_PORT", "9100")
    settings = load_settings(config)
    assert settings.database_url == "postgresql://db/bw"
    assert settings.max_batch == 500
    assert settings.port == 9100  # the environment wins over the file
    monkeypatch.setenv("BEAMWARDEN_CONFIG", str(config))
    assert load_settings().database_url == "postgresql://db/bw"


def test_unknown_and_invalid_settings_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("databse_url = 'typo'\n")
    with pytest.raises(ValidationError):
        load_settings(config)
    with pytest.raises(ValidationError):
        ServerSettings(max_batch=20_000)
    with pytest.raises(ValidationError):
        ServerSettings(tls_certfile=tmp_path / "cert.pem")  # without the key


def test_create_app_touches_nothing_before_it_starts(tmp_path: Path) -> None:
    db = tmp_path / "never" / "x.db"
    create_app(ServerSettings(database_url=f"sqlite:///{db}"))
    assert not db.parent.exists()
