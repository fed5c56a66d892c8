"""Room: server/store (adapter). Migration 0007: PostgreSQL's ``beamwarden_claim_ranges`` function,
with which a readings commit locks its streams and records their new sequence ranges in one round
trip (:mod:`beamwarden.server.store.postgres_writer`). SQLite: nothing (one writer).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ``keys``: the commit's advisory keys (streams, nodes with opaque ids), taken in this order and
# held until the commit. Then, per new range ``(nodes[i], streams[i], los[i], his[i])`` (a
# stream's new ranges are disjoint and do not touch each other): if any stored range of the stream
# overlaps one of them, nothing is written and the answer is false (the caller rolls back and
# deduplicates the readings one by one); otherwise each joins the stored ranges it touches and the
# answer is true. Each statement of a VOLATILE function sees what was committed before it started,
# so the look-up after the locks sees every range of the commits that held them before.
CLAIM_RANGES = """
CREATE OR REPLACE FUNCTION beamwarden_claim_ranges(
    keys bigint[], nodes text[], streams text[], los bigint[], his bigint[]
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i integer;
    low bigint;
    high bigint;
    right_hi bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(k) FROM unnest(keys) WITH ORDINALITY AS t(k, n) ORDER BY n;
    IF EXISTS (
        SELECT 1 FROM stream_ranges r
        JOIN unnest(nodes, streams, los, his) AS q(n, s, lo, hi)
        ON r.node_id = q.n AND r.stream = q.s AND r.hi >= q.lo AND r.lo <= q.hi
    ) THEN
        RETURN false;
    END IF;
    FOR i IN 1 .. coalesce(array_length(los, 1), 0) LOOP
        low := los[i];
        high := his[i];
        DELETE FROM stream_ranges
        WHERE node_id = nodes[i] AND stream = streams[i] AND lo = his[i] + 1
        RETURNING hi INTO right_hi;
        IF FOUND THEN
            high := right_hi;
        END IF;
        UPDATE stream_ranges SET hi = high
        WHERE node_id = nodes[i] AND stream = streams[i] AND hi = low - 1;
        IF NOT FOUND THEN
            INSERT INTO stream_ranges (node_id, stream, lo, hi)
            VALUES (nodes[i], streams[i], low, high);
        END IF;
    END LOOP;
    RETURN true;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CLAIM_RANGES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION beamwarden_claim_ranges(bigint[], text[], text[], bigint[], bigint[])"
        )
