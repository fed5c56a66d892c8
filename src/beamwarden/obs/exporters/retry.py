"""Room: obs (stands alone, pure: no I/O, no clock; time and randomness are arguments). When to
retry a failed export, and how long to wait first.

Only answers that say "try again later" are retried — ``429``, ``502``, ``503``, ``504`` — and
connection errors (the sender decides those); any other answer is final. The wait before retry
``n`` (1-based) is ``initial_backoff * multiplier**(n-1)``, at most ``max_backoff``, spread by
``± jitter`` (a fraction; ``0`` in tests makes it exact). A ``Retry-After`` header (seconds or an
HTTP date) replaces the computed wait. Every retry of one batch happens under one overall
``deadline``: a wait that would end after it is not started.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one batch is retried. ``deadline`` bounds the whole export of a batch (all attempts
    and waits); ``request_timeout`` bounds one attempt (and is cut to what the deadline leaves)."""

    initial_backoff: float = 1.0
    max_backoff: float = 32.0
    multiplier: float = 2.0
    jitter: float = 0.2
    deadline: float = 30.0
    request_timeout: float = 10.0
    #: a Retry-After longer than this is treated as this long
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("0 <= initial_backoff <= max_backoff")
        if self.multiplier < 1 or not 0 <= self.jitter < 1:
            raise ValueError("multiplier >= 1 and 0 <= jitter < 1")
        if self.deadline <= 0 or self.request_timeout <= 0:
            raise ValueError("deadline and request_timeout are positive")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry`` (1 for the first retry)."""
        exponent = min(max(retry - 1, 0), 64)
        base = min(self.initial_backoff * self.multiplier**exponent, self.max_backoff)
        if self.jitter == 0:
            return base
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return base * (1.0 + spread)

    def wait_before(
        self, retry: int, retry_after: float | None, rng: random.Random | None = None
    ) -> float:
        """What to wait: the server's ``Retry-After`` when it gave one, the backoff otherwise."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(retry, rng)


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds (``"120"``) or an HTTP date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``, counted from ``now``). None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text[:12]))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    seconds = moment.timestamp() - now
    return max(seconds, 0.0) if math.isfinite(seconds) else None
