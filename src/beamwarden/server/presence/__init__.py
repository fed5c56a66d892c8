"""Room: server/presence (adapter). Leases and node presence: in-process or in Redis.

Both satisfy ``Presence`` of :mod:`beamwarden.server.services.leases` structurally; adapters never
import services. Only ``app.py`` and the CLIs build one, with :func:`open_presence`.

* :class:`MemoryPresence` — the embedded default, for one server process.
* :class:`~beamwarden.server.presence.redis.RedisPresence` — shared by every replica
  (imported only when a Redis URL is given, so the embedded server does not load redis-py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .memory import MemoryPresence

if TYPE_CHECKING:
    from .redis import RedisPresence

__all__ = ["MemoryPresence", "open_presence"]


def open_presence(
    url: str | None, prefix: str = "beamwarden", timeout_s: float = 5.0
) -> MemoryPresence | RedisPresence:
    """In-process presence for ``None``, ``""`` or ``"memory"``; Redis for ``redis://…`` or
    ``rediss://…`` (keys under ``{prefix}``, each command bounded by ``timeout_s``)."""
    if not url or url == "memory":
        return MemoryPresence()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisPresence

        return RedisPresence.from_url(url, prefix, timeout_s=timeout_s)
    raise ValueError(f"unknown presence URL {url!r}: use 'memory' or redis://host:port/db")
