"""Room: server/store (adapter). Migration 0005: dashboard users, their sessions, personal tokens.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

``users`` holds people who log in to the dashboard (argon2 password hashes, a role); ``sessions``
the server side of their cookies (only SHA-256 hashes of the cookie value, a CSRF token each);
``tokens.user_id`` marks a user API token as someone's personal token.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_login_us", sa.BigInteger()),
        sa.Column("disabled_us", sa.BigInteger()),
    )
    op.create_index("ux_users_username", "users", ["username"], unique=True)
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("seen_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("ip_address", sa.Text()),
        sa.Column("user_agent", sa.Text()),
    )
    op.create_index("ux_sessions_token_hash", "sessions", ["token_hash"], unique=True)
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer()))
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_tokens_user_id", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("user_id")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_index("ux_sessions_token_hash", table_name="sessions")
    op.drop_table("sessions")
    op.drop_index("ux_users_username", table_name="users")
    op.drop_table("users")
