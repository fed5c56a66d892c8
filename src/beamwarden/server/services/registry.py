"""Room: server/services. The node inventory: adding, enrolling and registering nodes, status.

The inventory on the server is the authority: a node's registration replaces what it *reported*
(hostname, IP, software version, its own tags) and never what an operator set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from beamwarden.fleet import node_status
from beamwarden.protocol import NodeStatus, Registration, Scope
from beamwarden.server.errors import AlreadyExists, Forbidden, NotFound
from beamwarden.server.records import (
    EventFilter,
    Heartbeat,
    NodeRow,
    OperatorFields,
    Principal,
    ReportedFields,
    from_us,
    to_us,
)
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.credentials import Credentials, IssuedToken
from beamwarden.server.services.ports import NodeStore


@dataclass(frozen=True, slots=True)
class NodeView:
    """A node with what the server computes about it, on the server's clock."""

    row: NodeRow
    status: NodeStatus
    last_heartbeat: datetime | None
    heartbeat_age_seconds: float | None
    running_since: datetime | None = None
    """When the running agent started, on the server's clock (its last heartbeat's receive time
    minus the uptime it reported); ``None`` unless the node is online or degraded."""
    software_version_since: datetime | None = None
    """Since when the node runs ``row.software_version`` (from the activity log; only
    :meth:`NodeRegistry.get` looks it up)."""


@dataclass(frozen=True, slots=True)
class RegistrationOutcome:
    node: NodeView
    created: bool
    token: str | None = None


#: the activity log's kind for a node's software version changing (registration or telemetry)
SOFTWARE_VERSION_CHANGED = "software_version_changed"


class NodeRegistry:
    def __init__(
        self,
        store: NodeStore,
        credentials: Credentials,
        activity: ActivityLog,
        clock: Clock,
        last_seen: dict[str, Heartbeat] | None = None,
    ):
        self._store = store
        self._credentials = credentials
        self._activity = activity
        self._clock = clock
        #: node_id → its latest heartbeat, fresher than the database until the heartbeat service
        #: has flushed it; kept by that service
        self.last_seen: dict[str, Heartbeat] = last_seen if last_seen is not None else {}
        self._known: set[str] = set()
        #: node_id → the software version this process last saw it report
        self._versions: dict[str, str | None] = {}

    # --- operator actions (CLI, admin API) ---------------------------------------------------

    async def add_node(
        self, node_id: str, role: str, relay: bool = False, actor: str = "cli"
    ) -> tuple[NodeRow, IssuedToken]:
        row = await self._store.create_node(node_id, role, to_us(self._clock.now()))
        token = await self._credentials.issue_node_token(node_id, relay)
        await self._activity.record(
            "node_added",
            f"node {node_id} added (role {role}{', relay' if relay else ''})",
            node_id=node_id,
            actor=actor,
            data={"role": role, "relay": relay},
        )
        return row, token

    async def revoke(self, node_id: str, actor: str = "cli") -> NodeRow:
        row = await self._store.revoke_node(node_id, to_us(self._clock.now()))
        self._credentials.forget()
        self._known.discard(node_id)
        await self._activity.record(
            "node_revoked", f"node {node_id} revoked with its tokens", node_id=node_id, actor=actor
        )
        return row

    async def open_enrolment(self, node_id: str, actor: str = "cli") -> NodeRow:
        row = await self._store.set_enrolment_open(node_id, True)
        await self._activity.record(
            "enrolment_opened", f"node {node_id} may enrol again once", node_id=node_id, actor=actor
        )
        return row

    async def set_operator_fields(self, node_id: str, fields: OperatorFields) -> NodeRow:
        return await self._store.set_operator_fields(node_id, fields)

    # --- what nodes do -----------------------------------------------------------------------

    async def register(self, principal: Principal, reg: Registration) -> RegistrationOutcome:
        """A node registers: with its node token (updates), or with an enrolment key (creates)."""
        reported = ReportedFields(
            role=reg.role,
            hostname=reg.hostname,
            ip_address=str(reg.ip_address),
            software_version=reg.software_version,
            reported_tags=dict(reg.tags),
        )
        now_us = to_us(self._clock.now())
        actor = f"{principal.kind}:{principal.name}"
        if Scope.ENROL in principal.scopes:
            return await self._enrol(reg, reported, now_us, actor)
        if principal.kind != "node":
            raise Forbidden("registering a node needs its node token or an enrolment key")
        if principal.node_id != reg.node_id:
            raise Forbidden(
                f"this token belongs to node {principal.node_id!r}, not {reg.node_id!r}"
            )
        before = await self._store.get_node(reg.node_id)
        if before is None:
            raise NotFound(f"node {reg.node_id!r} is not in the inventory")
        row = await self._store.record_registration(reg.node_id, reported, now_us)
        await self._log_registration(before, row, actor)
        await self.note_software_version(
            reg.node_id, reg.software_version, actor, "registration", before=before
        )
        return RegistrationOutcome(self.view(row), created=False)

    async def _enrol(
        self, reg: Registration, reported: ReportedFields, now_us: int, actor: str
    ) -> RegistrationOutcome:
        existing = await self._store.get_node(reg.node_id)
        if existing is not None and not existing.enrolment_open:
            raise AlreadyExists(
                f"node {reg.node_id!r} is already enrolled; an admin can re-open its enrolment "
                f"(`beamwarden nodes enrol {reg.node_id}`)",
                code="node_exists",
            )
        if existing is None:
            try:
                await self._store.create_node(reg.node_id, reg.role, now_us)
            except AlreadyExists:
                raise AlreadyExists(
                    f"node {reg.node_id!r} is already enrolled", code="node_exists"
                ) from None
        else:
            await self._credentials.revoke_node_tokens(reg.node_id)
            await self._store.set_enrolment_open(reg.node_id, False)
        row = await self._store.record_registration(reg.node_id, reported, now_us)
        token = await self._credentials.issue_node_token(reg.node_id)
        kind, verb = (
            ("node_enrolled", "enrolled")
            if existing is None
            else ("node_reenrolled", "re-enrolled")
        )
        await self._activity.record(
            kind,
            f"node {reg.node_id} {verb} from {reported.hostname} ({reported.ip_address})",
            node_id=reg.node_id,
            actor=actor,
            data={
                "hostname": reported.hostname,
                "ip_address": reported.ip_address,
                "software_version": reported.software_version,
            },
        )
        await self.note_software_version(
            reg.node_id, reg.software_version, actor, "registration", before=existing
        )
        return RegistrationOutcome(self.view(row), created=existing is None, token=token.secret)

    async def _log_registration(self, before: NodeRow, after: NodeRow, actor: str) -> None:
        changed = {
            name: {"before": getattr(before, name), "after": getattr(after, name)}
            for name in ("role", "hostname", "ip_address", "software_version", "reported_tags")
            if getattr(before, name) != getattr(after, name)
        }
        if before.registered_us is None:
            message = f"node {after.node_id} registered from {after.hostname} ({after.ip_address})"
        elif changed:
            message = f"node {after.node_id} re-registered; changed: {', '.join(changed)}"
        else:
            return  # a restart that changed nothing is not news
        await self._activity.record(
            "node_registered", message, node_id=after.node_id, actor=actor, data=changed
        )

    async def note_software_version(
        self,
        node_id: str,
        version: str,
        actor: str,
        source: str = "telemetry",
        *,
        before: NodeRow | Literal[False] | None = False,
    ) -> bool:
        """Log ``software_version_changed`` (before/after) if ``version`` is not the version the
        node was last known to run; whether it was logged. Cheap when nothing changed (a dict
        look-up); otherwise the log is asked first, so replicas do not log one change twice.

        A registration, which has already stored the new version, passes the node as it was
        ``before`` (``None``: it did not exist)."""
        if node_id in self._versions and self._versions[node_id] == version:
            return False
        known = await self._known_version(node_id, before)
        self._versions[node_id] = version
        if known == version:
            return False
        await self._activity.record(
            SOFTWARE_VERSION_CHANGED,
            f"node {node_id} runs {version}"
            + (f" (was {known})" if known is not None else "")
            + f", reported by {source}",
            node_id=node_id,
            actor=actor,
            data={"before": known, "after": version, "source": source},
        )
        return True

    async def _known_version(
        self, node_id: str, before: NodeRow | Literal[False] | None
    ) -> str | None:
        """The latest ``after`` of the node's version changes, else what it registered with."""
        last = await self._activity.list(
            EventFilter(node_id=node_id, kind=SOFTWARE_VERSION_CHANGED), 1, None
        )
        if last:
            after = last[0].data.get("after")
            return str(after) if after is not None else None
        row = await self._store.get_node(node_id) if before is False else before
        return None if row is None else row.software_version

    # --- reading the inventory ---------------------------------------------------------------

    async def get(self, node_id: str) -> NodeView:
        """One node, with since when it runs its software version (from the activity log)."""
        row = await self._store.get_node(node_id)
        if row is None:
            raise NotFound(f"no node {node_id!r}")
        view = self.view(row)
        last = await self._activity.list(
            EventFilter(node_id=node_id, kind=SOFTWARE_VERSION_CHANGED), 1, None
        )
        if not last:
            return view
        change = last[0]
        version = change.data.get("after")
        row = view.row
        if version is not None and version != row.software_version:
            row = replace(row, software_version=str(version))  # reported by telemetry since
        return replace(view, row=row, software_version_since=from_us(change.ts_us))

    async def list(self, limit: int, after: str | None) -> list[NodeView]:
        return [self.view(row) for row in await self._store.list_nodes(limit, after)]

    async def exists(self, node_id: str) -> bool:
        """Whether a node is in the inventory and not revoked (cached once seen)."""
        if node_id in self._known:
            return True
        row = await self._store.get_node(node_id)
        if row is None or row.revoked_us is not None:
            return False
        self._known.add(node_id)
        return True

    def view(self, row: NodeRow) -> NodeView:
        beat = self.last_seen.get(row.node_id)
        if beat is not None and (
            row.last_heartbeat_us is None or beat.received_us >= row.last_heartbeat_us
        ):
            row = replace(
                row,
                last_heartbeat_us=beat.received_us,
                interval_seconds=beat.interval_seconds,
                uptime_seconds=beat.uptime_seconds,
                instance_id=beat.instance_id,
                state=beat.state,
                protocol_version=beat.protocol_version,
                clock_offset_seconds=beat.clock_offset_seconds,
                clock_samples=beat.clock_samples,
                software_version=beat.software_version,
            )
        now = self._clock.now()
        last = from_us(row.last_heartbeat_us) if row.last_heartbeat_us is not None else None
        age = max(0.0, (now - last).total_seconds()) if last is not None else None
        status = node_status(last, row.interval_seconds, now)
        running_since = (
            last - timedelta(seconds=row.uptime_seconds)
            if last is not None
            and row.uptime_seconds is not None
            and status in (NodeStatus.ONLINE, NodeStatus.DEGRADED)
            else None
        )
        return NodeView(row, status, last, age, running_since)
