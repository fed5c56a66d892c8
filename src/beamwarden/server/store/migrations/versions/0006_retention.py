"""Room: server/store (adapter). Migration 0006: per-stream retention (issue 7): what retention
has forgotten per sensor, and the policy in force.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

A frozen copy of ``retention_cuts`` and ``retention_policy`` of
:mod:`beamwarden.server.store.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_cuts",
        sa.Column("sensor_ref", sa.Integer(), nullable=False),
        sa.Column("raw_us", sa.BigInteger(), nullable=True),
        sa.Column("minute_us", sa.BigInteger(), nullable=True),
        sa.Column("hour_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("sensor_ref", name="pk_retention_cuts"),
    )
    op.create_table(
        "retention_policy",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_retention_policy"),
    )


def downgrade() -> None:
    op.drop_table("retention_policy")
    op.drop_table("retention_cuts")
