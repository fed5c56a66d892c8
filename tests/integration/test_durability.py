"""Durability is proven, not assumed: ``kill -9`` while readings stream in, on SQLite and on
PostgreSQL; a PostgreSQL of our own stopped under the server; a SQLite file made unwritable.

Every acknowledged (200) reading must be there after the restart, exactly once; resending
everything afterwards stores only what was never acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.databases import throwaway_postgres
from tests.fixtures.processes import (
    ServerProcess,
    cli,
    postgres_instance,
    server_env,
    token_from,
)

pytestmark = pytest.mark.slow

BASE = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
BATCH = 200


def batch_body(stream: str, first_seq: int, n: int = BATCH) -> list[dict[str, Any]]:
    return [
        {
            "node_id": "dur-1",
            "sensor_type": "climate",
            "payload": {"temperature_c": 20 + (seq % 50) / 10, "humidity_pct": 40.0},
            "timestamp": (BASE + timedelta(seconds=seq)).isoformat(),
            "reading_id": f"{stream}:{seq}",
        }
        for seq in range(first_seq, first_seq + n)
    ]


async def all_reading_ids(url: str, token: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while True:
            params: dict[str, Any] = {"limit": 1000, "node_id": "dur-1"}
            if cursor:
                params["cursor"] = cursor
            r = await client.get(
                "/api/readings", params=params, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            ids += [item["reading_id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return ids


async def stream_until_killed(
    server: ServerProcess, token: str, kill_after_s: float
) -> tuple[set[int], int]:
    """Four senders push batches; the server is SIGKILLed mid-stream. Returns the first seqs of
    acknowledged batches and how many batches were sent in all."""
    acked: set[int] = set()
    next_batch = 0
    headers = {"Authorization": f"Bearer {token}"}

    async def sender() -> None:
        nonlocal next_batch
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            while True:
                first = next_batch * BATCH + 1
                next_batch += 1
                try:
                    r = await client.post(
                        "/api/readings", json=batch_body("s", first), headers=headers
                    )
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.add(first)
                elif r.status_code >= 500:
                    return

    tasks = [asyncio.create_task(sender()) for _ in range(4)]
    await asyncio.sleep(kill_after_s)
    await asyncio.to_thread(server.kill)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return acked, next_batch


async def check_kill_9(server: ServerProcess, env: dict[str, str]) -> None:
    node_token = token_from(cli(env, "nodes", "add", "dur-1", "--role", "pi-log"))
    read_token = token_from(cli(env, "tokens", "add", "--scope", "read"))
    server.start()
    acked, sent = await stream_until_killed(server, node_token, kill_after_s=2.5)
    assert len(acked) >= 5, "the server acknowledged too little before the kill to prove anything"
    server.start()
    ids = await all_reading_ids(server.url, read_token)
    assert len(ids) == len(set(ids)), "a reading was stored twice"
    stored = set(ids)
    missing = [
        first
        for first in acked
        if f"s:{first}" not in stored or f"s:{first + BATCH - 1}" not in stored
    ]
    assert not missing, f"acknowledged batches lost after kill -9: {sorted(missing)[:10]}"
    # the sender's replay after the crash: everything again; only what was never stored is new
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        duplicates = 0
        for b in range(sent):
            r = await client.post(
                "/api/readings",
                json=batch_body("s", b * BATCH + 1),
                headers={"Authorization": f"Bearer {node_token}"},
            )
            assert r.status_code == 200, r.text
            duplicates += r.json()["duplicates"]
    assert duplicates == len(stored)
    final = await all_reading_ids(server.url, read_token)
    assert len(final) == len(set(final)) == sent * BATCH


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    try:
        yield server
    finally:
        server.kill()


async def test_kill_9_loses_no_acknowledged_reading_on_sqlite(tmp_path: Path) -> None:
    env = server_env(f"sqlite:///{tmp_path}/dur.db")
    with running(ServerProcess(env)) as server:
        await check_kill_9(server, env)


@pytest.mark.postgres
async def test_kill_9_loses_no_acknowledged_reading_on_postgres() -> None:
    async with throwaway_postgres() as url:
        env = server_env(url, ingest_writers="2")
        with running(ServerProcess(env)) as server:
            await check_kill_9(server, env)


# --- the database goes away under a running server ---------------------------------------------


@contextlib.asynccontextmanager
async def own_postgres() -> AsyncIterator[Any]:
    with postgres_instance() as pg:
        yield pg


async def test_a_stopped_postgres_gives_503_with_retry_after_and_recovers(tmp_path: Path) -> None:
    async with own_postgres() as pg:
        env = server_env(pg.url, db_connect_timeout_s="2", db_query_timeout_s="5")
        token = token_from(cli(env, "nodes", "add", "dur-1", "--role", "pi-log"))
        headers = {"Authorization": f"Bearer {token}"}
        with running(ServerProcess(env)) as server:
            server.start()
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
                r = await client.post("/api/readings", json=batch_body("p", 1, 10), headers=headers)
                assert r.status_code == 200, r.text
                await asyncio.to_thread(pg.stop, "immediate")
                r = await client.post(
                    "/api/readings", json=batch_body("p", 11, 10), headers=headers
                )
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "database_unavailable"
                assert int(r.headers["retry-after"]) > 0
                assert r.headers["x-request-id"] == r.json()["error"]["request_id"]
                r = await client.get("/api/health/ready")
                assert r.status_code == 503
                assert "retry-after" in r.headers
                assert (await client.get("/api/health/live")).status_code == 200
                await asyncio.to_thread(pg.start)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    r = await client.post(
                        "/api/readings", json=batch_body("p", 11, 10), headers=headers
                    )
                    if r.status_code == 200:
                        break
                    await asyncio.sleep(0.5)
                assert r.status_code == 200, r.text
                assert (await client.get("/api/health/ready")).status_code == 200


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


async def test_an_unwritable_sqlite_file_gives_503_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    env = server_env(f"sqlite:///{db}", db_query_timeout_s="3")
    token = token_from(cli(env, "nodes", "add", "dur-1", "--role", "pi-log"))
    headers = {"Authorization": f"Bearer {token}"}
    files = [db, db.with_name("ro.db-wal")]
    with running(ServerProcess(env)) as server:
        server.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            r = await client.post("/api/readings", json=batch_body("r", 1, 10), headers=headers)
            assert r.status_code == 200, r.text
            _chattr("+i", *files)  # immutable: not even root may write it
            try:
                r = await client.post(
                    "/api/readings", json=batch_body("r", 11, 10), headers=headers
                )
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "database_unavailable"
                assert "retry-after" in r.headers
            finally:
                _chattr("-i", *files)
            r = await client.post("/api/readings", json=batch_body("r", 11, 10), headers=headers)
            assert r.status_code == 200, r.text
            assert r.json() == {"accepted": 10, "duplicates": 0}
