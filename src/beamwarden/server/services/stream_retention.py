"""Room: server/services. Per-stream retention of readings and rollups: the policy in force, and
the sweep that applies it.

The policy (:mod:`beamwarden.fleet.retention`: defaults and ordered overrides by node, sensor
type or sensor id) is stored in the database, like the alert rules. At start the server imports
the policy of its settings (``readings_retention_days``, ``rollup_minute_retention_days``,
``rollup_hour_retention_days``, ``[[retention_overrides]]``) when it changed since the last
import; ``PUT /api/retention`` replaces it after that, until the settings change again. The sweep
(hourly, in the replica holding the lease ``sweeper:readings``) computes each stream's cuts and
hands them to the store (:class:`RetentionStorePort`), which forgets and records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from beamwarden.fleet.retention import (
    RetentionError,
    RetentionPolicy,
    StreamRetention,
    cutoff_us,
    parse_retention,
)
from beamwarden.server.errors import InvalidRequest
from beamwarden.server.records import RetentionReport, StreamCuts, StreamRow, from_us, to_us
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.clock import Clock


class RetentionStorePort(Protocol):
    async def get_policy(self) -> Any: ...

    async def put_policy(self, data: Any, now_us: int) -> None: ...

    async def streams(self) -> list[StreamRow]: ...

    async def cuts(self, refs: list[int]) -> dict[int, StreamCuts]: ...

    async def apply(self, cuts: Mapping[int, StreamCuts]) -> RetentionReport: ...


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """One stream's retention in force, and what has been forgotten (``None``: nothing)."""

    stream: StreamRow
    retention: StreamRetention
    raw_gone_before: datetime | None
    minute_gone_before: datetime | None
    hour_gone_before: datetime | None


def _digest(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class StreamRetentionService:
    def __init__(
        self,
        store: RetentionStorePort,
        clock: Clock,
        activity: ActivityLog,
        configured: RetentionPolicy,
    ) -> None:
        self._store = store
        self._clock = clock
        self._activity = activity
        self.configured = configured

    def _configured_doc(self) -> dict[str, Any]:
        return self.configured.model_dump(mode="json")

    async def start(self) -> None:
        """Import the settings' policy if it changed since it was last imported (logged in the
        activity log, except at the first start)."""
        doc = self._configured_doc()
        digest = _digest(doc)
        current = await self._store.get_policy()
        if isinstance(current, dict) and current.get("settings_sha") == digest:
            return
        data = {"doc": doc, "source": "settings", "settings_sha": digest}
        await self._store.put_policy(data, to_us(self._clock.now()))
        if current is None:
            return  # the first start: nothing changed
        await self._activity.record(
            "retention_changed",
            f"retention policy from the settings ({len(self.configured.overrides)} overrides)",
            actor="server",
            data={"policy": doc},
        )

    async def current(self) -> tuple[RetentionPolicy, str]:
        """The policy in force and where it came from (``settings`` or ``api``)."""
        stored = await self._store.get_policy()
        if not isinstance(stored, dict):
            return self.configured, "settings"
        try:
            return parse_retention(stored.get("doc", {})), str(stored.get("source", ""))
        except RetentionError:  # stored by another version: the settings are the safe answer
            return self.configured, "settings"

    async def replace(self, doc: Mapping[str, Any], actor: str) -> RetentionPolicy:
        """A new policy; keys it leaves out keep the settings' values. Raises InvalidRequest
        naming the key."""
        merged = {**self._configured_doc(), **doc}
        try:
            policy = parse_retention(merged)
        except RetentionError as exc:
            raise InvalidRequest(str(exc), code="invalid_retention") from None
        stored = await self._store.get_policy()
        settings_sha = stored.get("settings_sha") if isinstance(stored, dict) else None
        data: dict[str, Any] = {
            "doc": policy.model_dump(mode="json"),
            "source": "api",
            "settings_sha": settings_sha,
        }
        await self._store.put_policy(data, to_us(self._clock.now()))
        await self._activity.record(
            "retention_changed",
            f"retention policy replaced ({len(policy.overrides)} overrides)",
            actor=actor,
            data={"policy": data["doc"]},
        )
        return policy

    async def streams(self, node_id: str | None, sensor_id: str | None) -> list[StreamStatus]:
        """The retention of the streams of ``node_id`` (and/or with ``sensor_id``)."""
        policy, _ = await self.current()
        rows = [
            s
            for s in await self._store.streams()
            if (node_id is None or s.node_id == node_id)
            and (sensor_id is None or s.sensor_id == sensor_id)
        ]
        cuts = await self._store.cuts([s.ref for s in rows])

        def at(us: int | None) -> datetime | None:
            return None if us is None else from_us(us)

        out = []
        for s in sorted(rows, key=lambda r: (r.node_id, r.sensor_id, r.sensor_type)):
            c = cuts[s.ref]
            retention = policy.for_stream(s.node_id, s.sensor_type, s.sensor_id)
            out.append(StreamStatus(s, retention, at(c.raw_us), at(c.minute_us), at(c.hour_us)))
        return out

    async def sweep(self) -> RetentionReport:
        """Forget what each stream's retention no longer keeps."""
        policy, _ = await self.current()
        now_us = to_us(self._clock.now())
        cuts: dict[int, StreamCuts] = {}
        for s in await self._store.streams():
            r = policy.for_stream(s.node_id, s.sensor_type, s.sensor_id)
            cuts[s.ref] = StreamCuts(
                cutoff_us(now_us, r.raw_days),
                cutoff_us(now_us, r.minute_days),
                cutoff_us(now_us, r.hour_days),
            )
        return await self._store.apply(cuts)
