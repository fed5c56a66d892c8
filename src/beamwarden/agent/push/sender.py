"""Room: agent (push). One HTTP request with a batch of readings, its answer classified.

httpx (async, HTTP/1.1 keep-alive through one shared client); bodies from ``gzip_min_bytes`` on
are sent with ``Content-Encoding: gzip`` (level 1: most of the gain on JSON for a fraction of the
CPU a Pi would spend on level 6). Foreign exceptions stop here: every outcome is a
:class:`~beamwarden.agent.push.answers.Verdict`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import httpx

from beamwarden.agent.clock import Clock
from beamwarden.agent.push.answers import Verdict, classify, no_answer

READINGS_PATH = "/api/readings"


def gzip_bytes(body: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    return compressor.compress(body) + compressor.flush()


class ReadingSender:
    """POSTs readings batches to ``/api/readings`` with the node's token."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token: Callable[[], str | None],
        clock: Clock,
        gzip_min_bytes: int = 1024,
    ) -> None:
        self.client = client
        self.token = token
        self.clock = clock
        self.gzip_min_bytes = gzip_min_bytes

    async def send(self, body: bytes, batch_size: int) -> Verdict:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token()}"}
        if len(body) >= self.gzip_min_bytes:
            body = gzip_bytes(body)
            headers["Content-Encoding"] = "gzip"
        try:
            answer = await self.client.post(READINGS_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return no_answer(exc)
        return classify(
            answer.status_code, answer.headers, answer.content, batch_size, self.clock.now()
        )
