"""Room: agent (push). From the queue to the server: batches, answers, backoff."""

from .answers import Action, Verdict, classify, retry_after_seconds
from .pacing import Backoff, TokenBucket, equal_jitter
from .pusher import Cycle, Pusher
from .sender import ReadingSender

__all__ = [
    "Action",
    "Backoff",
    "Cycle",
    "Pusher",
    "ReadingSender",
    "TokenBucket",
    "Verdict",
    "classify",
    "equal_jitter",
    "retry_after_seconds",
]
