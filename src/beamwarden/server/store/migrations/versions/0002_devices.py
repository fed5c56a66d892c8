"""Room: server/store (adapter). Migration 0002: the device registry (issue 5): devices, their names, rooms and sites with history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``devices`` is keyed by the fleet-wide sensor id (``ble:<MAC>``); ``device_attributes`` keeps every
change of a name, room, site or claim. Both run unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("vendor_id", sa.String(128)),
        sa.Column("model", sa.String(64)),
        sa.Column("name", sa.Text()),
        sa.Column("room", sa.Text()),
        sa.Column("site", sa.Text()),
        sa.Column("claimed", sa.Boolean(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_us", sa.BigInteger()),
        sa.Column("last_source", sa.String(128)),
    )
    op.create_index("ux_devices_device_id", "devices", ["device_id"], unique=True)
    op.create_index("ix_devices_vendor_id", "devices", ["vendor_id"])
    op.create_table(
        "device_attributes",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("device_ref", sa.Integer(), nullable=False),
        sa.Column("attribute", sa.String(16), nullable=False),
        sa.Column("value", sa.Text()),
        sa.Column("previous", sa.Text()),
        sa.Column("since_us", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.Text()),
    )
    op.create_index("ix_device_attributes_device_ref_id", "device_attributes", ["device_ref", "id"])


def downgrade() -> None:
    op.drop_index("ix_device_attributes_device_ref_id", table_name="device_attributes")
    op.drop_table("device_attributes")
    op.drop_index("ix_devices_vendor_id", table_name="devices")
    op.drop_index("ux_devices_device_id", table_name="devices")
    op.drop_table("devices")
