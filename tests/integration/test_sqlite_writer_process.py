"""SQLite's readings writer in its child process (``sqlite_writer=process``, the default): a child
that dies or hangs costs the requests in flight (503) and nothing else, a new one takes over, and
no child outlives its server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from beamwarden.protocol import Reading
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.records import BatchOutcome, ReadingBatch, ReadingFilter
from beamwarden.server.store import SqlStore, StoreConfig, open_store, upgrade
from beamwarden.server.store.sqlite_writer_process import SqliteWriterProcess
from tests.fixtures.databases import sqlite_url

BASE = 1_800_000_000_000_000


def _batch(seqs: range) -> list[ReadingBatch]:
    readings = [
        Reading("node-1", "geiger-0", "geiger", {"cps": seq}, None, f"q:{seq}") for seq in seqs
    ]
    return [
        ReadingBatch("node-1", BASE, readings, [BASE + seq for seq in seqs], [0] * len(readings))
    ]


def _writer(store: SqlStore) -> SqliteWriterProcess:
    writer = store._writer  # the test looks at the child behind the store
    assert isinstance(writer, SqliteWriterProcess)
    return writer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has exited: only its parent's wait is missing
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


async def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def store(tmp_path: Path) -> SqlStore:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    opened = await open_store(StoreConfig(url, query_timeout=1.0))
    await opened.create_node("node-1", "pi-log", BASE)
    return opened


async def test_a_killed_child_costs_only_the_request_in_flight(store: SqlStore) -> None:
    writer = _writer(store)
    assert await store.write_readings(_batch(range(1, 11))) == [BatchOutcome(10, 0)]
    first = writer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert await _gone(first)
    outcomes: list[list[BatchOutcome]] = []
    for _ in range(3):  # the dead child is noticed by one request at most
        try:
            outcomes.append(await store.write_readings(_batch(range(11, 21))))
            break
        except StoreUnavailable:
            continue
    assert outcomes == [[BatchOutcome(10, 0)]]
    assert writer.pid not in (None, first)
    assert await store.count_readings(ReadingFilter()) == 20
    await store.close()


async def test_a_hung_child_is_killed_and_replaced(store: SqlStore) -> None:
    writer = _writer(store)
    assert await store.write_readings(_batch(range(1, 2))) == [BatchOutcome(1, 0)]
    hung = writer.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.write_readings(_batch(range(2, 3)))
    assert time.monotonic() - start < 5
    assert await _gone(hung)
    # nothing half-written: the retry of the same readings is stored once
    assert await store.write_readings(_batch(range(2, 3))) == [BatchOutcome(1, 0)]
    assert await store.count_readings(ReadingFilter()) == 2
    await store.close()


async def test_close_stops_the_child(store: SqlStore) -> None:
    pid = _writer(store).pid
    assert pid is not None
    await store.close()
    assert await _gone(pid)
    assert _writer(store).pid is None


async def test_the_child_never_outlives_a_killed_server(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    await asyncio.to_thread(upgrade, url)
    script = f"""
import asyncio, sys
from beamwarden.server.store import StoreConfig, open_store
async def main():
    store = await open_store(StoreConfig({url!r}))
    print(store._writer.pid, flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        child = int(await parent.stdout.readline())
        assert _alive(child)
        parent.kill()  # kill -9: no shutdown code runs in the server
        await parent.wait()
        assert await _gone(child)
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
