"""Room: agent (queue). Group commit in front of the queue: many puts, one transaction, one fsync.

Drivers' tasks call :meth:`QueueWriter.put` concurrently; while one commit runs (in a thread, so the
event loop keeps going), new puts gather and go in the next commit together. ``put`` returns only
after the commit that holds its readings: then, and only then, the readings count as taken.

Readings the bound pushes out of the queue (drop-oldest, see :mod:`.store`) are counted here and
logged at most once a minute with the count; a reading larger than ``MAX_READING_BYTES`` is
refused (counted, logged), since the server would refuse it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import orjson

from beamwarden.agent.clock import Clock, Offload
from beamwarden.agent.drivers.base import Sample
from beamwarden.agent.queue.store import ReadingQueue

log = logging.getLogger("beamwarden.agent.queue")

#: the largest reading body queued (64 fields of 256 characters fit well within it)
MAX_READING_BYTES = 64 * 1024
DROP_LOG_INTERVAL_S = 60.0


def encode_reading(node_id: str, sensor_type: str, sensor_id: str, sample: Sample) -> bytes:
    """The wire JSON of one reading, without ``reading_id`` (the queue adds it when sending)."""
    return orjson.dumps(
        {
            "node_id": node_id,
            "sensor_type": sample.sensor_type or sensor_type,
            "sensor_id": sample.sensor_id or sensor_id,
            "payload": sample.payload,
            "timestamp": sample.timestamp,
        },
        option=orjson.OPT_UTC_Z,
    )


class QueueWriter:
    def __init__(
        self,
        queue: ReadingQueue,
        clock: Clock,
        commit_log: Path | None = None,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self.queue = queue
        self.offload = offload
        self.clock = clock
        self._pending: list[bytes] = []
        self._waiters: list[tuple[asyncio.Future[range], int, int]] = []
        self._committer: asyncio.Task[None] | None = None
        self._commit_log: IO[bytes] | None = commit_log.open("ab") if commit_log else None
        self.committed_total = 0
        self.commits_total = 0
        self.dropped_total = 0
        self.refused_total = 0
        self._dropped_unlogged = 0
        self._drop_logged_at: float | None = None

    async def put(self, bodies: Sequence[bytes]) -> range:
        """Commit ``bodies``; return their sequence numbers once they are durable."""
        keep = [b for b in bodies if len(b) <= MAX_READING_BYTES]
        if len(keep) < len(bodies):
            self.refused_total += len(bodies) - len(keep)
            log.error(
                "%d readings larger than %d bytes refused (the server would refuse them too)",
                len(bodies) - len(keep),
                MAX_READING_BYTES,
            )
        if not keep:
            return range(0)
        future: asyncio.Future[range] = asyncio.get_running_loop().create_future()
        self._waiters.append((future, len(self._pending), len(keep)))
        self._pending.extend(keep)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_all())
        # shield: a cancelled driver task must not cancel the commit other readings share
        return await asyncio.shield(future)

    async def _commit_all(self) -> None:
        while self._pending:
            bodies, waiters = self._pending, self._waiters
            self._pending, self._waiters = [], []
            try:
                seqs = await self.offload(self.queue.put_many, bodies, self.clock.now().timestamp())
            except Exception as exc:
                for future, _, _ in waiters:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.commits_total += 1
            self.committed_total += len(seqs)
            self._note_dropped(self.queue.last_put_dropped)
            first = seqs.start
            for future, offset, count in waiters:
                if not future.done():
                    future.set_result(range(first + offset, first + offset + count))
            if self._commit_log is not None:
                self._write_commit_log(seqs, bodies)

    def _write_commit_log(self, seqs: range, bodies: list[bytes]) -> None:
        assert self._commit_log is not None
        stream = self.queue.stream.encode()
        self._commit_log.write(
            b"".join(
                b"%s:%d\t%s\n" % (stream, seq, body) for seq, body in zip(seqs, bodies, strict=True)
            )
        )
        self._commit_log.flush()

    def _note_dropped(self, count: int) -> None:
        if count <= 0:
            return
        self.dropped_total += count
        self._dropped_unlogged += count
        now = self.clock.monotonic()
        if self._drop_logged_at is None or now - self._drop_logged_at >= DROP_LOG_INTERVAL_S:
            log.warning(
                "queue full (max_rows %d, max_bytes %d): dropped the %d oldest readings "
                "(%d in all since start)",
                self.queue.max_rows,
                self.queue.max_bytes,
                self._dropped_unlogged,
                self.dropped_total,
            )
            self._dropped_unlogged = 0
            self._drop_logged_at = now

    async def close(self) -> None:
        """Wait for the commit in flight; close the commit log."""
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        if self._commit_log is not None:
            self._commit_log.close()
            self._commit_log = None
