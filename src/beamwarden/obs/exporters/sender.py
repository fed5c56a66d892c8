"""Room: obs (stands alone; talks HTTP through an ``httpx.Client``). Sends one encoded batch,
retrying what :mod:`.retry` says is worth retrying, under one overall deadline.

The sender never sleeps on its own: it waits through ``wait(seconds)``, which returns True when
the exporter is shutting down (so shutdown cuts a backoff short), and reads time from
``monotonic()``; tests give both and never wait for real time.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from beamwarden.obs.clock import Clock, SystemClock

from .retry import RetryPolicy, is_retryable_status, parse_retry_after


@dataclass(frozen=True, slots=True)
class Payload:
    """One request: ``method url`` with ``body`` of ``content_type``."""

    url: str
    body: bytes
    content_type: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)


class Outcome(StrEnum):
    SENT = "sent"  # a 2xx: the receiver has the batch
    REFUSED = (
        "refused"  # a final answer (4xx but 429, 5xx but 502/503/504): sending again won't help
    )
    GAVE_UP = "gave_up"  # still failing at the deadline, or shut down while waiting


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    attempts: int
    status: int | None = None
    detail: str = ""


class HttpSender:
    def __init__(
        self,
        client: httpx.Client,
        policy: RetryPolicy,
        *,
        wait: Callable[[float], bool],
        monotonic: Callable[[], float],
        clock: Clock | None = None,
        rng: random.Random | None = None,
        compression: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if compression not in {None, "gzip"}:
            raise ValueError("compression is None or 'gzip'")
        self.client = client
        self.policy = policy
        self.wait = wait
        self.monotonic = monotonic
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.compression = compression
        self.headers = dict(headers or {})
        #: attempts beyond the first, over the sender's life
        self.retries = 0

    def send(self, payload: Payload, deadline: float | None = None) -> SendResult:
        """Send until a 2xx, a final answer, or the deadline (``monotonic()`` time; by default
        ``policy.deadline`` from now)."""
        policy = self.policy
        if deadline is None:
            deadline = self.monotonic() + policy.deadline
        headers = {**self.headers, **payload.headers, "Content-Type": payload.content_type}
        body = payload.body
        if self.compression == "gzip":
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        attempt = 0
        while True:
            attempt += 1
            left = deadline - self.monotonic()
            if left <= 0:
                return SendResult(Outcome.GAVE_UP, attempt - 1, detail="deadline passed")
            retry_after: float | None = None
            try:
                response = self.client.request(
                    payload.method,
                    payload.url,
                    content=body,
                    headers=headers,
                    timeout=min(policy.request_timeout, left),
                )
            except httpx.TransportError as exc:  # connection refused/reset, timeouts, DNS
                status: int | None = None
                detail = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return SendResult(Outcome.SENT, attempt, status)
                detail = response.text[:300]
                if not is_retryable_status(status):
                    return SendResult(Outcome.REFUSED, attempt, status, detail)
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), self.clock.now()
                )
            delay = policy.wait_before(attempt, retry_after, self.rng)
            if self.monotonic() + delay >= deadline:
                return SendResult(Outcome.GAVE_UP, attempt, status, detail)
            if self.wait(delay):
                return SendResult(Outcome.GAVE_UP, attempt, status, "shut down while waiting")
            self.retries += 1
