"""Room: server/store (adapter). Migration 0003: alerts and check-ins (issue 7): alert rules'
persisted state, the evaluator's documents, silences, check-ins, the notification outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

A frozen copy of the issue-7 tables of :mod:`beamwarden.server.store.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(160), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rule", name="pk_alert_states"),
    )
    op.create_table(
        "alert_meta",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_alert_meta"),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("starts_us", sa.BigInteger(), nullable=False),
        sa.Column("ends_us", sa.BigInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("deleted_us", sa.BigInteger()),
    )
    op.create_index("ix_silences_ends_us", "silences", ["ends_us"])
    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("slug_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("every_s", sa.Double()),
        sa.Column("cron", sa.Text()),
        sa.Column("grace_s", sa.Double(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_ping_us", sa.BigInteger()),
        sa.Column("last_status", sa.String(16)),
        sa.Column("last_message", sa.Text()),
    )
    op.create_index("ux_checkins_name", "checkins", ["name"], unique=True)
    op.create_index("ux_checkins_slug_hash", "checkins", ["slug_hash"], unique=True)
    op.create_table(
        "notifications",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(160), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("sent_us", sa.BigInteger()),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_notifications_status_next", "notifications", ["status", "next_attempt_us"])
    op.create_index("ix_notifications_created_us", "notifications", ["created_us"])


def downgrade() -> None:
    for table in ("notifications", "checkins", "silences", "alert_meta", "alert_states"):
        op.drop_table(table)
