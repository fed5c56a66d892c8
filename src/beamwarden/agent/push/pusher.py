"""Room: agent (push). The push loop: queue → batches → server, reacting to every answer.

Each cycle composes one batch, sends it and acts on the :class:`Verdict` (the table is in
:mod:`.answers`), then says how long to wait before the next cycle.

Live first, backlog at a bounded rate
  ``live_floor`` is the newest sequence number queued when the pusher last (re)gained the server:
  at start, and when an outage ends. Readings above it are *live* and fill each batch first;
  readings at or below it are the *backlog* (what waited through the outage or the restart) and
  join a batch only as far as a token bucket of ``backlog_rate`` readings per second allows. So
  after an outage fresh readings keep flowing within ``batch_age_s`` while the backlog drains at a
  bounded rate, and a fleet coming back does not hammer the server all at once.

Batches by size or age
  A batch holds at most ``batch_max`` readings (less after a 413 taught us the server's limit).
  A full batch is followed by the next at once; otherwise the pusher waits ``batch_age_s`` or
  until :meth:`Pusher.notify` says a full batch is waiting.

Logging: one line when pushing starts failing and one when it recovers, except for answers that
need a person (401, 403, 404, other 4xx, 409), which are logged as errors at every slow retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from beamwarden.agent.clock import Clock, Offload, sleep_or_wake
from beamwarden.agent.config import PushSettings
from beamwarden.agent.push.answers import Action, Verdict
from beamwarden.agent.push.pacing import Backoff, Jitter, TokenBucket, equal_jitter
from beamwarden.agent.queue import QueuedReading, ReadingQueue

log = logging.getLogger("beamwarden.agent.push")

#: why a single reading the server calls too large (413) becomes a dead letter
TOO_LARGE_ALONE = "the server refuses this reading alone as too large (413)"


class Sender(Protocol):
    async def send(self, body: bytes, batch_size: int) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Cycle:
    """What one push cycle did and how long to wait before the next."""

    sent: int
    stored: int
    dead: int
    verdict: Verdict | None  # None: nothing to send (or held back)
    delay_s: float


class Pusher:
    def __init__(
        self,
        queue: ReadingQueue,
        sender: Sender,
        clock: Clock,
        settings: PushSettings,
        jitter: Jitter = equal_jitter,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self.queue = queue
        self.offload = offload
        self.sender = sender
        self.clock = clock
        self.settings = settings
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s, jitter)
        # up to one batch age of backlog may be saved up, and always at least one full batch
        capacity = max(settings.batch_max, settings.backlog_rate * settings.batch_age_s)
        self.bucket = TokenBucket(settings.backlog_rate, capacity, clock.monotonic())
        self.live_floor = queue.last_seq  # what was queued before we started is backlog
        self.batch_limit = settings.batch_max
        self.wake = asyncio.Event()
        self.pending = 0
        #: set by the node when another instance holds it (409 on a heartbeat): no writes
        self.hold: str | None = None
        #: the problem pushing has now (None: the last push succeeded), for health and telemetry
        self.problem: Verdict | None = None
        self.failed_attempts = 0
        self.errors_total = 0
        self.stored_total = 0
        self.dead_total = 0
        self.requests_total = 0
        #: called after a push the server stored (the node becomes active on the first one)
        self.on_stored: Callable[[], None] = lambda: None

    def notify(self, count: int) -> None:
        """Readings were queued; wake the loop early once a full batch is waiting."""
        self.pending += count
        if self.problem is None and self.pending >= self.batch_limit:
            self.wake.set()

    def compose(self) -> tuple[list[QueuedReading], int]:
        """The next batch: live readings first, then backlog as far as the bucket allows.
        Returns the batch and how many live readings it holds."""
        live = self.queue.peek(self.batch_limit, after=self.live_floor)
        room = self.batch_limit - len(live)
        backlog: list[QueuedReading] = []
        if room > 0 and self.live_floor > 0:
            now = self.clock.monotonic()
            allowed = min(room, self.bucket.available(now))
            backlog = self.queue.peek(allowed, upto=self.live_floor)
            self.bucket.take(len(backlog), now)
        return backlog + live, len(live)

    async def push_once(self) -> Cycle:
        if self.hold is not None:
            return Cycle(0, 0, 0, None, self.settings.slow_retry_s)
        self.pending = 0
        batch, live = await self.offload(self.compose)
        if not batch:
            return Cycle(0, 0, 0, None, self.settings.batch_age_s)
        stored, dead, verdict = await self._deliver(batch)
        self.stored_total += stored
        self.dead_total += dead
        if stored:
            self.on_stored()
        delay = self._after(verdict)
        if verdict.action in (Action.STORED, Action.INVALID) and (
            len(batch) >= self.batch_limit or live >= self.batch_limit or verdict.invalid
        ):
            delay = 0.0
        return Cycle(len(batch), stored, dead, verdict, delay)

    def _body(self, batch: Sequence[QueuedReading]) -> bytes:
        wire = self.queue.wire_item
        return b"[" + b",".join([wire(item) for item in batch]) + b"]"

    async def _deliver(self, batch: Sequence[QueuedReading]) -> tuple[int, int, Verdict]:
        """Send ``batch``; splits it on 413. Returns (stored, dead-lettered, last verdict)."""
        self.requests_total += 1
        verdict = await self.sender.send(self._body(batch), len(batch))
        if verdict.action is Action.STORED:
            await self.offload(self.queue.ack, [item.seq for item in batch])
            return len(batch), 0, verdict
        if verdict.action is Action.INVALID:
            errors = {
                batch[i].seq: f"{verdict.message} — {why}" for i, why in verdict.invalid.items()
            }
            moved = await self.offload(self.queue.dead_letter, errors, self.clock.now().timestamp())
            log.error(
                "the server refused %d of %d readings as invalid; moved to dead letters "
                "(pi-log queue dead-letters shows them): %s",
                len(errors),
                len(batch),
                verdict.message,
            )
            return 0, moved, verdict
        if verdict.action is Action.TOO_LARGE:
            if len(batch) == 1:
                moved = await self.offload(
                    self.queue.dead_letter,
                    {batch[0].seq: f"{TOO_LARGE_ALONE}: {verdict.message}"},
                    self.clock.now().timestamp(),
                )
                log.error("%s: reading %s", TOO_LARGE_ALONE, self.queue.reading_id(batch[0].seq))
                return 0, moved, Verdict(Action.INVALID, 413, verdict.message, invalid={0: ""})
            half = len(batch) // 2
            self.batch_limit = max(1, min(self.batch_limit, half))
            log.warning(
                "the server found a batch of %d too large; sending %d at most", len(batch), half
            )
            stored_a, dead_a, first = await self._deliver(batch[:half])
            if first.action not in (Action.STORED, Action.INVALID):
                return stored_a, dead_a, first
            stored_b, dead_b, second = await self._deliver(batch[half:])
            return stored_a + stored_b, dead_a + dead_b, second
        return 0, 0, verdict

    def _after(self, verdict: Verdict) -> float:
        """Bookkeeping and logging after a verdict; the delay before the next cycle."""
        if verdict.action in (Action.STORED, Action.INVALID):
            if self.problem is not None:
                log.info(
                    "pushing recovered after %d failed attempts (last: %s); %d readings queued "
                    "meanwhile drain at up to %g/s",
                    self.failed_attempts,
                    self.problem.message,
                    self.queue.depth,
                    self.settings.backlog_rate,
                )
                self.live_floor = self.queue.last_seq
            self.problem = None
            self.failed_attempts = 0
            self.backoff.reset()
            return self.settings.batch_age_s
        first = self.problem is None
        self.problem = verdict
        self.failed_attempts += 1
        self.errors_total += 1
        if verdict.action in (Action.REFUSED, Action.CONFLICT):
            what = (
                "another instance holds this node; not writing as it"
                if verdict.action is Action.CONFLICT
                else "the server refuses our readings; nothing is dropped, check the token and api_url"
            )
            log.error(
                "%s: %s (retrying every %g s)", what, verdict.message, self.settings.slow_retry_s
            )
            return self.settings.slow_retry_s
        if verdict.action is Action.OVERLOADED and verdict.retry_after_s is not None:
            delay = min(verdict.retry_after_s, self.settings.retry_after_max_s)
        else:
            delay = self.backoff.next_delay()
        if first:
            log.warning("pushing readings fails, retrying with backoff: %s", verdict.message)
        return delay

    async def run(self, stop: asyncio.Event) -> None:
        """Push until ``stop`` is set (then return; the agent drains with a deadline)."""
        while not stop.is_set():
            cycle = await self.push_once()
            if cycle.delay_s > 0 and not stop.is_set():
                self.wake.clear()
                await sleep_or_wake(self.clock, cycle.delay_s, self.wake)

    async def drain(self, deadline_s: float) -> int:
        """Push what is queued until it is empty, a push fails, or ``deadline_s`` passes."""
        end = self.clock.monotonic() + deadline_s
        self.live_floor = 0  # at shutdown everything is just "what is left"
        stored = 0
        while self.clock.monotonic() < end and self.hold is None:
            cycle = await self.push_once()
            stored += cycle.stored
            if cycle.sent == 0 or self.problem is not None:
                break
        return stored
