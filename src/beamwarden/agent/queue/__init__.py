"""Room: agent (queue). The durable, bounded reading queue (stdlib sqlite3) and its group commit."""

from .store import DeadLetter, QueuedReading, QueueStats, ReadingQueue
from .writer import MAX_READING_BYTES, QueueWriter, encode_reading

__all__ = [
    "MAX_READING_BYTES",
    "DeadLetter",
    "QueueStats",
    "QueueWriter",
    "QueuedReading",
    "ReadingQueue",
    "encode_reading",
]
