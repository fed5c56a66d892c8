"""A small HTTP/1.1 client for paced load on loopback (not a benchmark itself).

``bench_fleet_heartbeats.py`` measures the server's CPU at a given request rate; with httpx the
load generator itself could not send more than ~160 requests/s on a shared core, so the figure
could not be read. This client is what a load generator needs and nothing more: ``conns``
keep-alive connections (asyncio streams), one request in flight on each, requests written as
prepared bytes, answers read by ``Content-Length`` (the server we measure always sends one). It also reads
``bench_fleet_nodes.py``'s pages (:meth:`RawHttpPool.fetch`).
A request that finds every connection busy waits for the next free one (its wait counts in its
latency, measured from the moment it was due).

    async with RawHttpPool("127.0.0.1", port, conns=32) as pool:
        status, ms = await pool.send(request_bytes("POST", "/api/x", body, headers), due)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import TracebackType

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def request_bytes(
    method: str, path: str, host: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> bytes:
    """One HTTP/1.1 request, keep-alive, with a ``Content-Length``."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RawHttpPool:
    """``conns`` keep-alive connections to ``host:port``; :meth:`send` on the next free one."""

    def __init__(self, host: str, port: int, conns: int = 32, timeout: float = 30.0) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"load goes to loopback only, not {host!r}")
        self.host, self.port, self.conns, self.timeout = host, port, conns, timeout
        self._free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._all: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawHttpPool:
        for _ in range(self.conns):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.append(writer)
            self._free.put_nowait((reader, writer))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for writer in self._all:
            writer.close()
        for writer in self._all:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, request: bytes, due: float | None = None) -> tuple[int, float]:
        """(status, ms from ``due`` — default now — to the answer's last byte)."""
        start = time.perf_counter() if due is None else due
        status, _ = await self.fetch(request)
        return status, (time.perf_counter() - start) * 1000

    async def fetch(self, request: bytes) -> tuple[int, bytes]:
        """(status, body). A connection the server closed is opened again once; status 0: no
        answer."""
        reader, writer = await self._free.get()
        try:
            for _ in range(2):
                try:
                    writer.write(request)
                    return await asyncio.wait_for(self._answer(reader), self.timeout)
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                    self._all.append(writer)
            return 0, b""
        finally:
            self._free.put_nowait((reader, writer))

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await reader.readexactly(length) if length else b""
