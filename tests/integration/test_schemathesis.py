"""Fuzz every endpoint from our own OpenAPI document (schemathesis): malformed, hostile and
oversized input gets a clear 4xx, never a 500, with a node token and with an admin token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.fixtures.processes import ServerProcess, cli, server_env, token_from

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    path: Path = tmp_path_factory.mktemp("fuzz")
    env = server_env(f"sqlite:///{path}/fuzz.db", max_body_bytes="65536", max_batch="100")
    tokens = {
        "node": token_from(cli(env, "nodes", "add", "fuzz-node", "--role", "pi-log", "--relay")),
        "admin": token_from(cli(env, "tokens", "add", "--scope", "admin")),
    }
    server = ServerProcess(env)
    server.start()
    try:
        yield server, tokens
    finally:
        server.stop()


def fuzz(server: ServerProcess, token: str, examples: int) -> list[str]:
    """Every operation of the OpenAPI document, ``examples`` generated cases each; returns the
    failures (a 5xx, or a crash) as text."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            response = case.call(base_url=server.url, timeout=30)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    return failures


def test_no_server_errors_with_a_node_token(live: tuple[ServerProcess, dict[str, str]]) -> None:
    server, tokens = live
    assert fuzz(server, tokens["node"], 60) == []


def test_no_server_errors_with_an_admin_token(live: tuple[ServerProcess, dict[str, str]]) -> None:
    server, tokens = live
    assert fuzz(server, tokens["admin"], 40) == []
