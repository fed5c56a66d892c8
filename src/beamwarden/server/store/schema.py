"""Room: server/store (adapter). The database schema as SQLAlchemy Core tables, for both databases.

Imports only SQLAlchemy. Times are epoch microseconds in ``BIGINT`` columns (``*_us``) on SQLite and
PostgreSQL alike, so bucketing is the same SQL on both and PostgreSQL can range-partition
``readings`` on ``ts_us`` later. The migration ``0001`` creates exactly this; ``alembic check``
compares the two, so a change here needs a new migration.

``readings`` is the hot table and is kept lean on purpose: one secondary index
``(sensor_ref, ts_us)``, no foreign keys, no index on ``reading_id`` (duplicates are found through
``stream_ranges`` and ``reading_keys``). Its ``id`` is SQLite's rowid (``INTEGER PRIMARY KEY``) and
``BIGSERIAL`` on PostgreSQL. Numeric payload fields are copied into ``v0``..``v7`` by the
sensor's field → slot map (``sensors.fields``), so series are computed on plain columns.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

#: Numeric payload fields stored in columns per sensor; more are kept only in the payload.
SLOTS = 8

metadata = MetaData()

#: A 64-bit key that is SQLite's rowid alias (``INTEGER PRIMARY KEY``).
BigId = BigInteger().with_variant(Integer(), "sqlite")

nodes = Table(
    "nodes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", String(64), nullable=False),
    Column("role", String(64), nullable=False),
    Column("display_name", Text),
    Column("site", Text),
    Column("room", Text),
    Column("operator_tags", JSON, nullable=False),
    Column("hostname", Text),
    Column("ip_address", Text),
    Column("software_version", Text),
    Column("reported_tags", JSON, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("registered_us", BigInteger),
    Column("last_heartbeat_us", BigInteger),
    Column("interval_seconds", Double, nullable=False),
    Column("uptime_seconds", Double),
    Column("instance_id", Text),
    Column("state", String(16)),
    Column("protocol_version", String(32)),
    Column("clock_offset_seconds", Double),
    Column("clock_samples", Integer, nullable=False),
    Column("enrolment_open", Boolean, nullable=False),
    Column("revoked_us", BigInteger),
    Index("ux_nodes_node_id", "node_id", unique=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("node_id", String(64)),
    Column("created_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    Column("last_used_us", BigInteger),
    Index("ux_tokens_token_hash", "token_hash", unique=True),
    Index("ix_tokens_node_id", "node_id"),
)

sensors = Table(
    "sensors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(64), nullable=False),  # the node id; '' for a fleet-wide sensor id
    Column("sensor_id", String(128), nullable=False),
    Column("sensor_type", String(64), nullable=False),
    Column("fields", JSON, nullable=False),  # numeric field name -> slot 0..7, append-only
    Column("created_us", BigInteger, nullable=False),
    Index("ux_sensors_key", "owner", "sensor_id", "sensor_type", unique=True),
)

readings = Table(
    "readings",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("sensor_ref", Integer, nullable=False),
    Column("node_ref", Integer, nullable=False),
    Column("source_ref", Integer),  # the sending node when it is not the reading's node (relay)
    Column("ts_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("flags", SmallInteger, nullable=False),
    Column("reading_id", String(128)),
    Column("payload", Text, nullable=False),  # compact JSON
    *(Column(f"v{slot}", Double) for slot in range(SLOTS)),
    Index("ix_readings_sensor_ts", "sensor_ref", "ts_us"),
)

#: Readings' column order for inserts; the hot path builds tuples in exactly this order.
READING_COLUMNS: tuple[str, ...] = (
    "sensor_ref",
    "node_ref",
    "source_ref",
    "ts_us",
    "received_us",
    "flags",
    "reading_id",
    "payload",
    *(f"v{slot}" for slot in range(SLOTS)),
)

stream_ranges = Table(
    "stream_ranges",
    metadata,
    Column("node_id", String(64), nullable=False),
    Column("stream", String(128), nullable=False),
    Column("lo", BigInteger, nullable=False),
    Column("hi", BigInteger, nullable=False),
    PrimaryKeyConstraint("node_id", "stream", "lo", name="pk_stream_ranges"),
)

reading_keys = Table(
    "reading_keys",
    metadata,
    Column("node_id", String(64), nullable=False),
    Column("reading_id", String(128), nullable=False),
    Column("received_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("node_id", "reading_id", name="pk_reading_keys"),
    Index("ix_reading_keys_received_us", "received_us"),
)

telemetry = Table(
    "telemetry",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("node_ref", Integer, nullable=False),
    Column("ts_us", BigInteger, nullable=False),  # the node's clock
    Column("received_us", BigInteger, nullable=False),  # the server's clock
    Column("uptime_seconds", Double, nullable=False),
    Column("software_version", Text, nullable=False),
    Column("ip_address", Text, nullable=False),
    Column("interval_seconds", Double, nullable=False),
    Column("instance_id", Text),
    Column("state", String(16)),
    Column("protocol_version", String(32)),
    Column("metrics", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Index("ix_telemetry_node_ref_received_us", "node_ref", "received_us"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("ts_us", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("node_id", String(64)),
    Column("actor", Text),
    Column("request_id", Text),
    Column("message", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_events_node_id_id", "node_id", "id"),
    Index("ix_events_kind_id", "kind", "id"),
)
