"""The ``beamwarden`` command line against a real SQLite database (``BEAMWARDEN_DATABASE_URL``)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from beamwarden.protocol import Scope
from beamwarden.server.cli import EXPORT_COLUMNS, app
from beamwarden.server.errors import Unauthenticated
from beamwarden.server.metrics import ServerMetrics
from beamwarden.server.presence import MemoryPresence
from beamwarden.server.records import Principal
from beamwarden.server.services.clock import SystemClock
from beamwarden.server.services.container import ServiceConfig, Services
from beamwarden.server.services.credentials import hash_token
from beamwarden.server.store import StoreConfig, open_store, upgrade

BIN = Path(sys.executable).parent / "beamwarden"


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/x.db"
    monkeypatch.setenv("BEAMWARDEN_DATABASE_URL", url)
    monkeypatch.delenv("BEAMWARDEN_CONFIG", raising=False)
    return url


@pytest.fixture
def cli(db_url: str) -> CliRunner:
    return CliRunner()


def invoke(cli: CliRunner, *args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ok(cli: CliRunner, *args: str) -> str:
    code, out, err = invoke(cli, *args)
    assert code == 0, (out, err)
    return out


def refused(cli: CliRunner, *args: str) -> str:
    """The command fails with exit code 1 and one clear line on stderr; returns that line."""
    code, out, err = invoke(cli, *args)
    assert code == 1, (out, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@asynccontextmanager
async def services_of(url: str) -> AsyncIterator[Services]:
    await asyncio.to_thread(upgrade, url)
    store = await open_store(StoreConfig(url))
    services = Services.build(
        store, SystemClock(), ServerMetrics(), ServiceConfig(), MemoryPresence()
    )
    services.committer.start()
    try:
        yield services
    finally:
        await services.committer.stop()
        await store.close()


def principal_of(url: str, token: str) -> Principal | None:
    """Who the token belongs to (through the hash lookup), or None if it does not authenticate."""

    async def check() -> Principal | None:
        async with services_of(url) as services:
            row = await services.store.find_token(hash_token(token))
            try:
                principal = await services.credentials.authenticate(token)
            except Unauthenticated:
                return None
            assert row is not None
            assert row.id == principal.token_id
            return principal

    return asyncio.run(check())


# --- nodes -------------------------------------------------------------------------------------


def test_nodes_add_prints_a_token_once_that_authenticates(cli: CliRunner, db_url: str) -> None:
    code, out, err = invoke(cli, "nodes", "add", "pi-01", "--role", "pi-log")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n", "stdout is the token alone, easy to copy or capture"
    assert token.startswith("bwn_")
    assert "shown this once" in err
    assert "Authorization: Bearer" in err
    principal = principal_of(db_url, token)
    assert principal is not None
    assert (principal.kind, principal.node_id, principal.scopes) == (
        "node",
        "pi-01",
        frozenset({Scope.NODE}),
    )


def test_nodes_add_relay(cli: CliRunner, db_url: str) -> None:
    token = ok(cli, "nodes", "add", "hub-1", "--role", "mqtt-bridge", "--relay").strip()
    principal = principal_of(db_url, token)
    assert principal is not None
    assert principal.scopes == frozenset({Scope.NODE, Scope.RELAY})


def test_a_duplicate_node_is_refused_with_one_clear_line(cli: CliRunner) -> None:
    ok(cli, "nodes", "add", "pi-01", "--role", "pi-log")
    line = refused(cli, "nodes", "add", "pi-01", "--role", "pi-log")
    assert "pi-01" in line
    assert "exists" in line


@pytest.mark.parametrize("node_id", ["Pi-01", "_pi", ".pi", "pi 01", "pi/01", "a" * 65, ""])
def test_an_invalid_node_id_is_refused(cli: CliRunner, node_id: str) -> None:
    line = refused(cli, "nodes", "add", node_id, "--role", "pi-log")
    assert "invalid node id" in line
    assert "a-z" in line
    refused(cli, "nodes", "show", node_id)


def test_an_invalid_role_is_refused(cli: CliRunner) -> None:
    assert "invalid role" in refused(cli, "nodes", "add", "pi-01", "--role", "Pi Log")


def test_nodes_list_show_enrol_revoke(cli: CliRunner, db_url: str) -> None:
    token = ok(cli, "nodes", "add", "pi-01", "--role", "pi-log").strip()
    ok(cli, "nodes", "add", "gw-02", "--role", "mqtt-bridge")

    listing = ok(cli, "nodes", "list")
    for word in ("node", "role", "status", "last heartbeat", "host", "ip", "version"):
        assert word in listing
    assert "pi-01" in listing
    assert "gw-02" in listing
    assert "mqtt-bridge" in listing
    assert listing.count("unknown") == 2
    assert listing.count("never") == 2
    assert listing.index("gw-02") < listing.index("pi-01"), "ordered by node id"

    shown = ok(cli, "nodes", "show", "pi-01")
    for word in ("pi-01", "pi-log", "unknown", "created", "last heartbeat", "never", "30 s"):
        assert word in shown
    assert "enrolment open      no" in shown

    ok(cli, "nodes", "enrol", "pi-01")
    assert "enrolment open      yes" in ok(cli, "nodes", "show", "pi-01")

    code, _, err = invoke(cli, "nodes", "revoke", "pi-01")
    assert code == 0
    assert "revoked" in err
    assert principal_of(db_url, token) is None
    assert "revoked" in ok(cli, "nodes", "list")
    assert "revoked" in ok(cli, "nodes", "show", "pi-01")


@pytest.mark.parametrize("command", ["show", "revoke", "enrol"])
def test_an_unknown_node_is_one_clear_line(cli: CliRunner, command: str) -> None:
    assert "nope" in refused(cli, "nodes", command, "nope")


def test_nodes_list_when_empty(cli: CliRunner) -> None:
    code, _, err = invoke(cli, "nodes", "list")
    assert code == 0
    assert "no nodes yet" in err


# --- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "kind", "prefix"),
    [
        (Scope.READ, "user", "bwu_"),
        (Scope.METRICS, "user", "bwu_"),
        (Scope.ADMIN, "user", "bwu_"),
        (Scope.ENROL, "enrol", "bwe_"),
    ],
)
def test_tokens_add_each_scope(
    cli: CliRunner, db_url: str, scope: Scope, kind: str, prefix: str
) -> None:
    code, out, err = invoke(cli, "tokens", "add", "--scope", scope.value, "--name", "grafana")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n"
    assert token.startswith(prefix)
    assert "shown this once" in err
    principal = principal_of(db_url, token)
    assert principal is not None
    assert (principal.kind, principal.name, principal.scopes) == (
        kind,
        "grafana",
        frozenset({scope}),
    )


def test_tokens_add_names_after_the_scope_by_default(cli: CliRunner, db_url: str) -> None:
    principal = principal_of(db_url, ok(cli, "tokens", "add", "--scope", "read").strip())
    assert principal is not None
    assert principal.name == "read"


@pytest.mark.parametrize("scope", ["node", "relay"])
def test_tokens_add_refuses_node_scopes(cli: CliRunner, scope: str) -> None:
    assert "nodes add" in refused(cli, "tokens", "add", "--scope", scope)


def test_tokens_add_refuses_an_unknown_scope(cli: CliRunner) -> None:
    line = refused(cli, "tokens", "add", "--scope", "root")
    assert "read, metrics, admin or enrol" in line


def test_tokens_list_never_shows_a_secret(cli: CliRunner) -> None:
    secrets = [
        ok(cli, "nodes", "add", "pi-01", "--role", "pi-log").strip(),
        ok(cli, "tokens", "add", "--scope", "read", "--name", "grafana").strip(),
        ok(cli, "tokens", "add", "--scope", "enrol", "--name", "lab").strip(),
    ]
    listing = ok(cli, "tokens", "list")
    for word in ("id", "kind", "name", "scopes", "node", "created", "revoked"):
        assert word in listing
    for word in ("grafana", "lab", "pi-01", "user", "enrol", "read"):
        assert word in listing
    for secret in secrets:
        assert secret not in listing
        assert secret[:12] not in listing
        assert hash_token(secret).hex()[:16] not in listing
    assert "bwu_" not in listing
    assert "bwn_" not in listing
    assert "bwe_" not in listing


def test_tokens_revoke(cli: CliRunner, db_url: str) -> None:
    token = ok(cli, "tokens", "add", "--scope", "read", "--name", "grafana").strip()
    principal = principal_of(db_url, token)
    assert principal is not None
    code, _, err = invoke(cli, "tokens", "revoke", str(principal.token_id))
    assert code == 0
    assert "revoked" in err
    assert principal_of(db_url, token) is None
    listing = ok(cli, "tokens", "list")
    assert listing.count(datetime.now(UTC).strftime("%Y-%m-%d")) == 2, "created and revoked"


def test_tokens_revoke_an_unknown_id(cli: CliRunner) -> None:
    assert "99" in refused(cli, "tokens", "revoke", "99")


# --- readings export ---------------------------------------------------------------------------

T0 = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)


def seed_readings(url: str) -> None:
    """Readings of two nodes stored through the ingest service, as the API stores them."""

    async def seed() -> None:
        async with services_of(url) as services:
            bodies = {
                "pi-01": [
                    {
                        "sensor_type": "climate",
                        "sensor_id": "bme280@0x76",
                        "payload": {"temperature_c": 21.5, "humidity_pct": 44.0},
                        "timestamp": T0.isoformat(),
                        "reading_id": "q:1",
                    },
                    {
                        "sensor_type": "climate",
                        "sensor_id": "bme280@0x76",
                        "payload": {"temperature_c": 21.75, "pressure_pa": 101325.5},
                        "timestamp": (T0 + timedelta(minutes=1)).isoformat(),
                        "reading_id": "q:2",
                    },
                    {  # before 2020: kept, flagged suspect
                        "sensor_type": "climate",
                        "sensor_id": "bme280@0x76",
                        "payload": {"temperature_c": 19.0},
                        "timestamp": "2019-06-01T00:00:00Z",
                        "reading_id": "q:3",
                    },
                ],
                "gc-02": [
                    {  # LogExp's shape without a timestamp: the server's receive time
                        "counts_per_second": 1,
                        "counts_per_minute": 37,
                        "microsieverts_per_hour": 0.24,
                        "mode": "slow",
                    },
                ],
            }
            for node_id, body in bodies.items():
                _, token = await services.registry.add_node(node_id, "pi-log")
                principal = await services.credentials.authenticate(token.secret)
                outcome = await services.ingest.ingest(principal, json.dumps(body).encode())
                assert outcome.accepted == len(body)

    asyncio.run(seed())


def test_readings_export_csv(cli: CliRunner, db_url: str, tmp_path: Path) -> None:
    seed_readings(db_url)
    target = tmp_path / "out.csv"
    code, out, err = invoke(cli, "readings", "export", "--output", str(target))
    assert code == 0, err
    assert out == ""
    assert "4 readings written" in err
    assert not (tmp_path / "out.csv.part").exists()
    with target.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert header[: len(EXPORT_COLUMNS)] == list(EXPORT_COLUMNS)
    # one column per payload field seen in the selection, sorted
    assert header[len(EXPORT_COLUMNS) :] == [
        "cpm",
        "cps",
        "humidity_pct",
        "mode",
        "pressure_pa",
        "temperature_c",
        "usv_per_hour",
    ]
    assert len(rows) == 4
    # oldest first: the suspect 2019 reading, the two of 2025, then the server-stamped one
    suspect, first, second, geiger = rows
    assert suspect["timestamp"] == "2019-06-01T00:00:00Z"
    assert suspect["timestamp_suspect"] == "true"
    assert suspect["timestamp_source"] == "node"
    assert suspect["temperature_c"] == "19.0"
    assert suspect["reading_id"] == "q:3"
    assert first == {
        **dict.fromkeys(header, ""),
        "node_id": "pi-01",
        "sensor_id": "bme280@0x76",
        "sensor_type": "climate",
        "timestamp": "2025-03-14T14:00:00Z",
        "received_at": first["received_at"],
        "reading_id": "q:1",
        "source": first["source"],
        "timestamp_source": "node",
        "timestamp_suspect": "false",
        "temperature_c": "21.5",
        "humidity_pct": "44.0",
    }
    assert first["source"] in ("", "pi-01")
    received = datetime.fromisoformat(first["received_at"])
    assert first["received_at"].endswith("Z")
    assert abs(datetime.now(UTC) - received) < timedelta(minutes=5)
    assert second["temperature_c"] == "21.75"
    assert second["pressure_pa"] == "101325.5"
    assert second["humidity_pct"] == ""
    assert geiger["node_id"] == "gc-02"
    assert geiger["sensor_type"] == "geiger"
    assert geiger["timestamp_source"] == "server"
    assert geiger["timestamp_suspect"] == "false"
    assert geiger["timestamp"] == geiger["received_at"]
    assert geiger["reading_id"] == ""
    assert geiger["temperature_c"] == ""
    assert geiger["cpm"] == "37"
    assert geiger["mode"] == "SLOW"


def test_readings_export_ndjson_to_stdout(cli: CliRunner, db_url: str) -> None:
    seed_readings(db_url)
    out = ok(cli, "readings", "export", "--format", "ndjson")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert list(row)[: len(EXPORT_COLUMNS)] == list(EXPORT_COLUMNS)
    suspect, first, second, geiger = rows
    assert suspect["timestamp_suspect"] is True
    assert first["timestamp_suspect"] is False
    assert first["temperature_c"] == 21.5
    assert first["humidity_pct"] == 44.0
    assert "pressure_pa" not in first, "NDJSON carries each reading's own fields"
    assert second["pressure_pa"] == 101325.5
    assert geiger["timestamp_source"] == "server"
    assert geiger["reading_id"] is None
    assert geiger["cpm"] == 37
    assert geiger["usv_per_hour"] == 0.24
    assert "payload" not in first, "payload fields are inline"


def test_readings_export_filters(cli: CliRunner, db_url: str) -> None:
    seed_readings(db_url)

    def ids(*args: str) -> list[str | None]:
        out = ok(cli, "readings", "export", "--format", "ndjson", *args)
        return [json.loads(line)["reading_id"] for line in out.splitlines()]

    assert ids("--node", "pi-01") == ["q:3", "q:1", "q:2"]
    assert ids("--type", "geiger") == [None]
    assert ids("--sensor", "bme280@0x76", "--field", "pressure_pa") == ["q:2"]
    assert ids("--since", "2025-01-01", "--until", "2025-03-14T14:00:30Z") == ["q:1"]
    assert ids("--node", "nope") == []
    assert ok(cli, "readings", "export", "--node", "nope") == ",".join(EXPORT_COLUMNS) + "\n"


def test_readings_export_refuses_bad_options(cli: CliRunner) -> None:
    assert "csv or ndjson" in refused(cli, "readings", "export", "--format", "xml")
    assert "ISO-8601" in refused(cli, "readings", "export", "--since", "yesterday")
    assert "field" in refused(cli, "readings", "export", "--field", "Temp C")


def test_csv_quotes_and_text(cli: CliRunner, db_url: str) -> None:
    async def seed() -> None:
        async with services_of(db_url) as services:
            _, token = await services.registry.add_node("pi-01", "pi-log")
            principal = await services.credentials.authenticate(token.secret)
            body = {
                "sensor_type": "air_quality",
                "payload": {"status_text": 'dusty, "very"', "fan_on": True, "source": "x"},
                "timestamp": T0.isoformat(),
            }
            await services.ingest.ingest(principal, json.dumps(body).encode())

    asyncio.run(seed())
    out = ok(cli, "readings", "export")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["status_text"] == 'dusty, "very"'
    assert rows[0]["fan_on"] == "true"
    assert rows[0]["payload.source"] == "x", "a field named like a fixed column keeps its value"
    assert rows[0]["sensor_id"] == "air_quality"


# --- settings, database, migrate ---------------------------------------------------------------


def test_migrate(cli: CliRunner, db_url: str) -> None:
    code, _, err = invoke(cli, "migrate")
    assert code == 0
    assert "newest schema" in err


def test_config_file(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEAMWARDEN_DATABASE_URL")
    config = tmp_path / "bw.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path}/from-config.db"\n')
    ok(cli, "--config", str(config), "nodes", "add", "pi-01", "--role", "pi-log")
    assert (tmp_path / "from-config.db").exists()
    assert "pi-01" in ok(cli, "--config", str(config), "nodes", "list")


def test_invalid_settings_are_one_line(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEAMWARDEN_PORT", "not-a-port")
    assert "invalid settings" in refused(cli, "nodes", "list")
    monkeypatch.delenv("BEAMWARDEN_PORT")
    config = tmp_path / "bad.toml"
    config.write_text("database_url = \n")
    assert "settings" in refused(cli, "--config", str(config), "nodes", "list")
    assert "settings" in refused(cli, "--config", str(tmp_path / "missing.toml"), "nodes", "list")


def test_an_unreachable_database_is_one_line(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("BEAMWARDEN_DATABASE_URL", f"postgresql://bw:secret@127.0.0.1:{port}/x")
    line = refused(cli, "nodes", "list")
    assert "database" in line
    assert "secret" not in line, "the password is never printed"
    line = refused(cli, "migrate")
    assert "secret" not in line


# --- serve -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_and_stops_cleanly(db_url: str, sig: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "BEAMWARDEN_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health/live", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.1)
        assert r.status_code == 200
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert b"Traceback" not in err
        logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
        assert any("serving on sqlite" in entry["msg"] for entry in logs), "JSON logs on stderr"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_commands_do_not_migrate_when_migrate_on_start_is_off(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEAMWARDEN_MIGRATE_ON_START", "false")
    assert "database" in refused(cli, "nodes", "list")
    ok(cli, "migrate")
    ok(cli, "nodes", "add", "pi-01", "--role", "pi-log")
