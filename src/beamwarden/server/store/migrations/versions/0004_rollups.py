"""Room: server/store (adapter). Migration 0004: rollups (issue 7): 1-minute and 1-hour aggregates
per series, and the marks of buckets still to summarise.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

A frozen copy of ``rollup_dirty`` and ``rollups`` of :mod:`beamwarden.server.store.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rollup_dirty",
        sa.Column("sensor_ref", sa.Integer(), nullable=False),
        sa.Column("width_s", sa.Integer(), nullable=False),
        sa.Column("bucket_us", sa.BigInteger(), nullable=False),
        sa.Column("marked_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_ref", "width_s", "bucket_us", name="pk_rollup_dirty"),
    )
    op.create_table(
        "rollups",
        sa.Column("sensor_ref", sa.Integer(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("width_s", sa.Integer(), nullable=False),
        sa.Column("bucket_us", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Double(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("last_ts_us", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_ref", "slot", "width_s", "bucket_us", name="pk_rollups"),
    )


def downgrade() -> None:
    op.drop_table("rollups")
    op.drop_table("rollup_dirty")
