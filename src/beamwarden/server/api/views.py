"""Room: server/api. Records → the wire models of PROTOCOL.md (``beamwarden.protocol.messages``)."""

from __future__ import annotations

from datetime import datetime

from beamwarden.protocol import Event, NodeRecord, StoredReading
from beamwarden.server.records import (
    FLAG_SERVER_TIMESTAMP,
    FLAG_TIMESTAMP_SUSPECT,
    EventRow,
    ReadingRow,
    from_us,
)
from beamwarden.server.services.registry import NodeView


class NodeInventoryRecord(NodeRecord):
    """A node record with what the server's inventory adds (issue 4)."""

    running_since: datetime | None = None
    """When the running agent started, on the server's clock (uptime = now - this); null unless
    the node is online or degraded."""
    software_version_since: datetime | None = None
    """Since when the node runs ``software_version`` (activity log; ``GET /api/nodes/{id}``)."""


def node_record(view: NodeView) -> NodeInventoryRecord:
    row = view.row
    return NodeInventoryRecord(
        node_id=row.node_id,
        role=row.role,
        status=view.status,
        display_name=row.display_name,
        site=row.site,
        room=row.room,
        operator_tags=row.operator_tags,
        hostname=row.hostname,
        ip_address=row.ip_address,
        software_version=row.software_version,
        reported_tags=row.reported_tags,
        registered_at=from_us(row.registered_us) if row.registered_us is not None else None,
        created_at=from_us(row.created_us),
        last_heartbeat_at=view.last_heartbeat,
        heartbeat_age_seconds=view.heartbeat_age_seconds,
        interval_seconds=row.interval_seconds,
        uptime_seconds=row.uptime_seconds,
        instance_id=row.instance_id,
        state=row.state,
        protocol_version=row.protocol_version,
        clock_offset_seconds=row.clock_offset_seconds,
        enrolment_open=row.enrolment_open,
        running_since=view.running_since,
        software_version_since=view.software_version_since,
    )


def stored_reading(row: ReadingRow) -> StoredReading:
    return StoredReading(
        node_id=row.node_id,
        sensor_id=row.sensor_id,
        sensor_type=row.sensor_type,
        timestamp=from_us(row.ts_us),
        received_at=from_us(row.received_us),
        payload=row.payload,
        reading_id=row.reading_id,
        source=row.source,
        timestamp_source="server" if row.flags & FLAG_SERVER_TIMESTAMP else "node",
        timestamp_suspect=bool(row.flags & FLAG_TIMESTAMP_SUSPECT),
    )


def event(row: EventRow) -> Event:
    return Event(
        id=row.id,
        ts=from_us(row.ts_us),
        kind=row.kind,
        node_id=row.node_id,
        actor=row.actor,
        request_id=row.request_id,
        message=row.message,
        data=row.data,
    )
