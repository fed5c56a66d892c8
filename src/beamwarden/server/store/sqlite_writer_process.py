"""Room: server/store (adapter). SQLite's readings writer in a child process (``sqlite_writer=process``).

Imports the standard library, msgspec and :mod:`.sqlite_writer`. The server keeps one child
(``python -m beamwarden.server.store.sqlite_writer_process``) per store and talks to it over its
stdin and stdout: a request is a 4-byte big-endian length and a JSON document (msgspec: the batches
exactly as the services built them, JSON because a payload may hold integers beyond 64 bits), the
answer the same. One request at a time. The child runs :class:`~.sqlite_writer.SqliteWriterCore`,
so a ``200`` still waits for the same durable ``COMMIT``.

Failures keep their meaning across the pipe: the child answers ``sqlite3`` errors by class and
message and the parent raises the same class (so :func:`~.failures.unavailable` maps them as
before), and an unknown node as :class:`~beamwarden.server.errors.NotFound`. Each request carries
its time budget: past it the child interrupts its statement (a progress handler), which rolls the
transaction back. If no answer comes a little later, or the child dies, or the caller is cancelled
mid-exchange, the parent kills the child (SQLite's commit is atomic, so a kill is safe at any
moment), raises, and starts a new child on the next request. The child exits when its stdin
closes, so it never outlives the server, even one killed with ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import struct
import sys
import time
from typing import BinaryIO

import msgspec

from beamwarden.server.errors import NotFound, StoreUnavailable
from beamwarden.server.records import BatchOutcome, ReadingBatch

from .config import StoreConfig
from .sqlite_writer import SqliteWriterCore

#: how long past a request's budget the parent waits for the answer before killing the child
GRACE_S = 2.0
#: how long ``close`` waits for the child to exit before killing it
_EXIT_WAIT_S = 5.0
_HEAD = struct.Struct(">I")


class _Start(msgspec.Struct, frozen=True):
    path: str
    config: StoreConfig


class _Write(msgspec.Struct, frozen=True, tag="write"):
    budget_s: float
    batches: list[ReadingBatch]


class _Prune(msgspec.Struct, frozen=True, tag="prune"):
    budget_s: float
    before_us: int


class _Answer(msgspec.Struct, frozen=True, omit_defaults=True):
    outcomes: list[BatchOutcome] = []
    count: int = 0
    #: "" (success), "not_found", or the name of the sqlite3 exception class
    error: str = ""
    message: str = ""
    code: str = ""


_REQUEST = msgspec.json.Decoder(_Write | _Prune)
_ANSWER = msgspec.json.Decoder(_Answer)
_encode = msgspec.json.Encoder().encode
_SQLITE_ERRORS: dict[str, type[sqlite3.Error]] = {
    cls.__name__: cls
    for cls in (
        sqlite3.OperationalError,
        sqlite3.IntegrityError,
        sqlite3.DatabaseError,
        sqlite3.Error,
    )
}


class SqliteWriterProcess:
    """The ``process`` writer: the parent side, with the interface of the ``thread`` writer."""

    def __init__(self, path: str, config: StoreConfig) -> None:
        self._start = _encode(_Start(path, config)).decode()
        # a little under the caller's own timeout, so the child's interruption usually answers
        # before the caller gives up (which kills the child)
        self._budget_s = config.query_timeout * 0.95
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def start(self) -> None:
        """Start the child now rather than on the first request (it takes a moment to import)."""
        async with self._lock:
            await self._spawn()

    async def write(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        return (await self._call(_Write(self._budget_s, batches))).outcomes

    async def prune_reading_keys(self, before_us: int) -> int:
        return (await self._call(_Prune(self._budget_s, before_us))).count

    async def close(self) -> None:
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or proc.returncode is not None:
                return
            assert proc.stdin is not None
            proc.stdin.close()  # the child finishes its request, sees EOF and exits
            try:
                async with asyncio.timeout(_EXIT_WAIT_S):
                    await proc.wait()
            except TimeoutError:
                await _kill(proc)

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            proc = self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                self._start,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        return proc

    async def _call(self, request: _Write | _Prune) -> _Answer:
        body = _encode(request)
        async with self._lock:
            proc = await self._spawn()
            assert proc.stdin is not None
            assert proc.stdout is not None
            try:
                async with asyncio.timeout(request.budget_s + GRACE_S):
                    proc.stdin.write(_HEAD.pack(len(body)) + body)
                    await proc.stdin.drain()
                    (size,) = _HEAD.unpack(await proc.stdout.readexactly(_HEAD.size))
                    answer = _ANSWER.decode(await proc.stdout.readexactly(size))
            except BaseException as exc:
                # the exchange is broken (timeout, cancelled, child gone): never reuse the pipe
                self._proc = None
                await _kill(proc)
                if isinstance(exc, asyncio.IncompleteReadError | ConnectionError):
                    raise StoreUnavailable("the SQLite writer process stopped") from exc
                raise
        if answer.error:
            raise _rebuild(answer)
        return answer


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def _rebuild(answer: _Answer) -> Exception:
    if answer.error == "not_found":
        return NotFound(answer.message, code=answer.code or None)
    cls = _SQLITE_ERRORS.get(answer.error)
    if cls is not None:
        return cls(answer.message)
    return RuntimeError(f"SQLite writer process: {answer.error}: {answer.message}")


# -- the child ------------------------------------------------------------------------------


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) < size:
        return None  # EOF: the server closed the pipe or is gone
    return data


class _Deadline:
    """The running request's deadline (``time.monotonic``), asked by SQLite's progress handler."""

    def __init__(self) -> None:
        self.at = 0.0

    def passed(self) -> bool:
        return time.monotonic() > self.at


def _serve(
    core: SqliteWriterCore, deadline: _Deadline, requests: BinaryIO, answers: BinaryIO
) -> None:
    while True:
        head = _read_exactly(requests, _HEAD.size)
        if head is None:
            return
        body = _read_exactly(requests, _HEAD.unpack(head)[0])
        if body is None:
            return
        request = _REQUEST.decode(body)
        deadline.at = time.monotonic() + request.budget_s
        try:
            if isinstance(request, _Write):
                answer = _Answer(outcomes=core.write(request.batches))
            else:
                answer = _Answer(count=core.prune_reading_keys(request.before_us))
        except NotFound as exc:
            answer = _Answer(error="not_found", message=exc.message, code=exc.code)
        except sqlite3.Error as exc:
            name = type(exc).__name__
            answer = _Answer(error=name if name in _SQLITE_ERRORS else "Error", message=str(exc))
        out = _encode(answer)
        answers.write(_HEAD.pack(len(out)) + out)
        answers.flush()


def main() -> None:
    """The child: serve requests from stdin until it closes."""
    start = msgspec.json.decode(sys.argv[1], type=_Start)
    # Ctrl-C reaches the whole process group: the server shuts down and then closes our stdin;
    # until then the child finishes what it was asked to do
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the answers get a private copy of stdout; fd 1 goes to stderr, so a stray print (ours or a
    # library's) can never corrupt the protocol
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    deadline = _Deadline()
    core = SqliteWriterCore(start.path, start.config, past_deadline=deadline.passed)
    try:
        _serve(core, deadline, sys.stdin.buffer, answers)
    except BrokenPipeError:
        pass  # the server went away between request and answer: what was committed stays
    finally:
        core.close()


if __name__ == "__main__":
    main()
