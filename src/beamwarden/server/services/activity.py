"""Room: server/services. The activity log: what happened, to which node, by whom, in which request."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beamwarden.server.context import current_request_id
from beamwarden.server.records import EventFilter, EventRow, NewEvent, to_us
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.ports import EventStore

log = logging.getLogger("beamwarden.activity")


@dataclass(frozen=True, slots=True)
class Activity:
    """One event for :meth:`ActivityLog.record_many` (the arguments of :meth:`ActivityLog.record`)."""

    kind: str
    message: str
    node_id: str | None = None
    actor: str | None = None
    data: dict[str, Any] | None = None


class ActivityLog:
    def __init__(self, store: EventStore, clock: Clock):
        self._store = store
        self._clock = clock

    async def record(
        self,
        kind: str,
        message: str,
        *,
        node_id: str | None = None,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        event = NewEvent(
            ts_us=to_us(self._clock.now()),
            kind=kind,
            message=message,
            node_id=node_id,
            actor=actor,
            request_id=current_request_id() or None,
            data=data or {},
        )
        log.info(message, extra={"event_kind": kind, "node_id": node_id, "actor": actor})
        return await self._store.add_event(event)

    async def record_many(self, entries: Sequence[Activity]) -> None:
        """Several events at once, in one transaction (a bridge discovering a thousand devices
        must not write a thousand transactions one after the other)."""
        now_us = to_us(self._clock.now())
        request_id = current_request_id() or None
        batch = []
        for a in entries:
            batch.append(
                NewEvent(now_us, a.kind, a.message, a.node_id, a.actor, request_id, a.data or {})
            )
            log.info(
                a.message, extra={"event_kind": a.kind, "node_id": a.node_id, "actor": a.actor}
            )
        await self._store.add_events(batch)

    async def list(self, flt: EventFilter, limit: int, before_id: int | None) -> list[EventRow]:
        return await self._store.list_events(flt, limit, before_id)
