"""Room: agent (push). Pacing, pure: exponential backoff with injectable jitter, a token bucket.

Neither reads a clock: the token bucket is given ``now`` (monotonic seconds) by its caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: maps a delay to the delay actually waited; tests pass ``lambda d: d`` (no jitter)
Jitter = Callable[[float], float]


def equal_jitter(delay: float) -> float:
    """Half the delay fixed, half random: spreads retries of many nodes, never waits less than d/2."""
    return random.uniform(delay / 2, delay)


class Backoff:
    """``base, 2·base, 4·base, …`` up to ``cap`` seconds, each passed through ``jitter``."""

    def __init__(self, base: float, cap: float, jitter: Jitter = equal_jitter) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2 ** min(self.attempts, 62))
        self.attempts += 1
        return self.jitter(delay)

    def reset(self) -> None:
        self.attempts = 0


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def available(self, now: float) -> int:
        self._refill(now)
        return int(self.tokens)

    def take(self, count: int, now: float) -> None:
        self._refill(now)
        self.tokens = max(0.0, self.tokens - count)
