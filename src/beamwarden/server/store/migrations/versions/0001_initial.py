"""Room: server/store (adapter). Migration 0001: the initial schema (every table and index).

Revision ID: 0001
Revises:
Create Date: 2026-11-22

A frozen copy of :mod:`beamwarden.server.store.schema` as first released; it runs unchanged on
SQLite and PostgreSQL. ``telemetry.id`` and ``events.id`` are SQLite's rowid (``INTEGER PRIMARY
KEY``) and ``BIGSERIAL`` on PostgreSQL. ``readings`` has one b-tree on PostgreSQL, its primary
key ``(sensor_ref, ts_us, id)`` with an identity ``id``; on SQLite the rows are in ``id`` order
(the rowid, given by the writer from ``sequences``) and the covering index ``ix_readings_series``
``(sensor_ref, ts_us, id, v0..v7)`` serves series (see :mod:`..schema`). PostgreSQL's
``readings`` is partitioned by range of ``ts_us`` with a default partition; the server adds one
partition per day (``store/partitions.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id(big: bool = False) -> sa.Column[int]:
    return sa.Column("id", BIG_ID if big else sa.Integer(), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "nodes",
        _id(),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("display_name", sa.Text()),
        sa.Column("site", sa.Text()),
        sa.Column("room", sa.Text()),
        sa.Column("operator_tags", sa.JSON(), nullable=False),
        sa.Column("hostname", sa.Text()),
        sa.Column("ip_address", sa.Text()),
        sa.Column("software_version", sa.Text()),
        sa.Column("reported_tags", sa.JSON(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("registered_us", sa.BigInteger()),
        sa.Column("last_heartbeat_us", sa.BigInteger()),
        sa.Column("interval_seconds", sa.Double(), nullable=False),
        sa.Column("uptime_seconds", sa.Double()),
        sa.Column("instance_id", sa.Text()),
        sa.Column("state", sa.String(16)),
        sa.Column("protocol_version", sa.String(32)),
        sa.Column("clock_offset_seconds", sa.Double()),
        sa.Column("clock_samples", sa.Integer(), nullable=False),
        sa.Column("enrolment_open", sa.Boolean(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger()),
    )
    op.create_index("ux_nodes_node_id", "nodes", ["node_id"], unique=True)

    op.create_table(
        "tokens",
        _id(),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("node_id", sa.String(64)),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_us", sa.BigInteger()),
        sa.Column("last_used_us", sa.BigInteger()),
    )
    op.create_index("ux_tokens_token_hash", "tokens", ["token_hash"], unique=True)
    op.create_index("ix_tokens_node_id", "tokens", ["node_id"])

    op.create_table(
        "sensors",
        _id(),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("sensor_id", sa.String(128), nullable=False),
        sa.Column("sensor_type", sa.String(64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ux_sensors_key", "sensors", ["owner", "sensor_id", "sensor_type"], unique=True)

    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "readings",
        sa.Column("sensor_ref", sa.Integer(), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("id", BIG_ID, sa.Identity(), nullable=False),
        sa.Column("node_ref", sa.Integer(), nullable=False),
        sa.Column("source_ref", sa.Integer()),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.SmallInteger(), nullable=False),
        *(sa.Column(f"v{slot}", sa.Double()) for slot in range(8)),
        sa.Column("reading_id", sa.String(128)),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            *(("id",) if sqlite else ("sensor_ref", "ts_us", "id")), name="pk_readings"
        ),
        postgresql_partition_by="RANGE (ts_us)",
    )
    if not sqlite:  # day partitions are made by the server (store/partitions.py)
        op.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    if sqlite:
        op.create_index(
            "ix_readings_series",
            "readings",
            ["sensor_ref", "ts_us", "id", *(f"v{slot}" for slot in range(8))],
        )

    op.create_table(
        "sequences",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sequences"),
    )

    op.create_table(
        "stream_ranges",
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(128), nullable=False),
        sa.Column("lo", sa.BigInteger(), nullable=False),
        sa.Column("hi", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "stream", "lo", name="pk_stream_ranges"),
    )

    op.create_table(
        "reading_keys",
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("reading_id", sa.String(128), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "reading_id", name="pk_reading_keys"),
    )
    op.create_index("ix_reading_keys_received_us", "reading_keys", ["received_us"])

    op.create_table(
        "telemetry",
        _id(big=True),
        sa.Column("node_ref", sa.Integer(), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("uptime_seconds", sa.Double(), nullable=False),
        sa.Column("software_version", sa.Text(), nullable=False),
        sa.Column("ip_address", sa.Text(), nullable=False),
        sa.Column("interval_seconds", sa.Double(), nullable=False),
        sa.Column("instance_id", sa.Text()),
        sa.Column("state", sa.String(16)),
        sa.Column("protocol_version", sa.String(32)),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
    )
    op.create_index("ix_telemetry_node_ref_received_us", "telemetry", ["node_ref", "received_us"])

    op.create_table(
        "events",
        _id(big=True),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("node_id", sa.String(64)),
        sa.Column("actor", sa.Text()),
        sa.Column("request_id", sa.Text()),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_node_id_id", "events", ["node_id", "id"])
    op.create_index("ix_events_kind_id", "events", ["kind", "id"])


def downgrade() -> None:
    for table in (
        "events",
        "telemetry",
        "reading_keys",
        "stream_ranges",
        "sequences",
        "readings",
        "sensors",
        "tokens",
        "nodes",
    ):
        op.drop_table(table)
