"""Room: server/store (adapter). The database schema as SQLAlchemy Core tables, for both databases.

Imports only SQLAlchemy. Times are epoch microseconds in ``BIGINT`` columns (``*_us``) on SQLite and
PostgreSQL alike, so bucketing is the same SQL on both and PostgreSQL can range-partition
``readings`` on ``ts_us`` later. The migration ``0001`` creates exactly this; ``alembic check``
compares the two, so a change here needs a new migration.

``readings`` is the hot table and is kept lean on purpose: no foreign keys, no index on
``reading_id`` (duplicates are found through ``stream_ranges`` and ``reading_keys``), and one
b-tree ordered ``(sensor_ref, ts_us, id)`` so that a series is one range scan:

* PostgreSQL: that b-tree is the primary key and the table's only index; ``id`` is an identity
  column (a sequence default, no index of its own); the heap is not clustered.
* SQLite: the rows are stored in ``id`` order (the rowid, given by the writer, which bumps the
  ``readings`` row of :data:`sequences` once per transaction under the write lock, never
  ``max(id)``), so a commit appends them to a few pages; the b-tree is the covering index
  ``ix_readings_series`` ``(sensor_ref, ts_us, id, v0..v7)``, which holds everything a series
  query reads. Each commit still touches one index page per active series, but index entries
  are small (no payload), so fewer pages fill and split per reading: measured 1.3x the rows per
  second of the earlier ``WITHOUT ROWID`` table clustered on the same key, for series queries
  that read fewer pages (docs/benchmarks.md).

PostgreSQL's ``readings`` is partitioned by range of ``ts_us``, one partition per UTC day and a
default partition for the rest (:mod:`.partitions`); the primary key holds ``ts_us``, as a
partitioned table's keys must.
Numeric payload fields are copied into ``v0``..``v7`` by the sensor's field → slot map
(``sensors.fields``), so series are computed on plain columns.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Identity,
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

from .layout import SLOTS

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
    Column("user_id", Integer),
    Index("ux_tokens_token_hash", "token_hash", unique=True),
    Index("ix_tokens_node_id", "node_id"),
    Index("ix_tokens_user_id", "user_id"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_login_us", BigInteger),
    Column("disabled_us", BigInteger),
    Index("ux_users_username", "username", unique=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("seen_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("ip_address", Text),
    Column("user_agent", Text),
    Index("ux_sessions_token_hash", "token_hash", unique=True),
    Index("ix_sessions_user_id", "user_id"),
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
    Column("sensor_ref", Integer, nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    # SQLite: the rowid, assigned by the writer from ``sequences``; PostgreSQL: GENERATED BY DEFAULT
    # AS IDENTITY
    Column("id", BigId, Identity(), nullable=False),
    Column("node_ref", Integer, nullable=False),
    Column("source_ref", Integer),  # the sending node when it is not the reading's node (relay)
    Column("received_us", BigInteger, nullable=False),
    Column("flags", SmallInteger, nullable=False),
    *(Column(f"v{slot}", Double) for slot in range(SLOTS)),
    Column("reading_id", String(128)),
    Column("payload", Text, nullable=False),  # compact JSON
    # PostgreSQL's; SQLite's is ``(id)`` (the migration creates it; Alembic compares no primary keys)
    PrimaryKeyConstraint("sensor_ref", "ts_us", "id", name="pk_readings"),
    Index(
        "ix_readings_series",
        "sensor_ref",
        "ts_us",
        "id",
        *(f"v{slot}" for slot in range(SLOTS)),
        info={"dialects": ("sqlite",)},
    ),
    # one partition per day on PostgreSQL, made by the server; retention drops whole days
    postgresql_partition_by="RANGE (ts_us)",
)

#: Counters the store keeps itself, one row per name (``readings``: the last id given on SQLite).
sequences = Table(
    "sequences",
    metadata,
    Column("name", String(64), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", name="pk_sequences"),
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

# --- alerts, check-ins and notifications (issue 7; migration 0003) -----------------------------

#: One row per alert rule (and ``checkin:*`` for check-ins): its ``AlertState.to_dict()``.
alert_states = Table(
    "alert_states",
    metadata,
    Column("rule", String(160), nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("rule", name="pk_alert_states"),
)

#: Small documents of the evaluator: ``rules`` (the rules document in force), ``cursor`` (how far
#: readings were evaluated), ``cadences`` (learned stream intervals).
alert_meta = Table(
    "alert_meta",
    metadata,
    Column("name", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", name="pk_alert_meta"),
)

#: Silences made through the API or the CLI (maintenance windows live in the rules document).
silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("rules", JSON, nullable=False),  # rule names; [] = every rule
    Column("scope", JSON, nullable=False),  # a fleet.alerts.Scope as a dict
    Column("starts_us", BigInteger, nullable=False),
    Column("ends_us", BigInteger, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_by", Text),
    Column("created_us", BigInteger, nullable=False),
    Column("deleted_us", BigInteger),
    Index("ix_silences_ends_us", "ends_us"),
)

#: Scheduled jobs that ping the server; the slug is a secret, stored as its SHA-256 hash.
checkins = Table(
    "checkins",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("slug_hash", LargeBinary(32), nullable=False),
    Column("every_s", Double),
    Column("cron", Text),
    Column("grace_s", Double, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_ping_us", BigInteger),
    Column("last_status", String(16)),  # "success" | "fail"
    Column("last_message", Text),
    Index("ux_checkins_name", "name", unique=True),
    Index("ux_checkins_slug_hash", "slug_hash", unique=True),
)

#: The notification outbox and its record: written with the alert state, sent after.
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("rule", String(160), nullable=False),
    Column("subject", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("sent_us", BigInteger),
    Column("error", Text),
    Index("ix_notifications_status_next", "status", "next_attempt_us"),
    Index("ix_notifications_created_us", "created_us"),
)

# --- the device registry (issue 5; migration 0002) ---------------------------------------------

#: Devices keyed by their fleet-wide sensor id (``ble:<MAC>``), which is also their series' key: a
#: rename changes ``name``, never the series. Unknown devices are created unclaimed when heard.
devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", String(128), nullable=False),
    Column("vendor_id", String(128)),  # govee:<16 hex>
    Column("model", String(64)),
    Column("name", Text),
    Column("room", Text),
    Column("site", Text),
    Column("claimed", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("last_seen_us", BigInteger),
    Column("last_source", String(128)),
    Index("ux_devices_device_id", "device_id", unique=True),
    Index("ix_devices_vendor_id", "vendor_id"),
)

#: Every change of a device's name, room, site or claim: what it became, from when, by whom.
device_attributes = Table(
    "device_attributes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("device_ref", Integer, nullable=False),
    Column("attribute", String(16), nullable=False),
    Column("value", Text),
    Column("previous", Text),
    Column("since_us", BigInteger, nullable=False),
    Column("actor", Text),
    Index("ix_device_attributes_device_ref_id", "device_ref", "id"),
)

#: Buckets of readings not yet (re)summarised into ``rollups``: a readings commit marks each minute
#: (``width_s`` 60) it touched, in the same transaction, with its time (``marked_us``); the rollup
#: job takes ripe minute marks, recomputes them and marks their hours (``width_s`` 3600).
rollup_dirty = Table(
    "rollup_dirty",
    metadata,
    Column("sensor_ref", Integer, nullable=False),
    Column("width_s", Integer, nullable=False),
    Column("bucket_us", BigInteger, nullable=False),
    Column("marked_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("sensor_ref", "width_s", "bucket_us", name="pk_rollup_dirty"),
)

#: Per series (sensor, slot) and bucket of ``width_s`` (60 or 3600): count, sum, min, max and the
#: last value (with its time). A bucket with a mark in ``rollup_dirty`` is not trusted.
rollups = Table(
    "rollups",
    metadata,
    Column("sensor_ref", Integer, nullable=False),
    Column("slot", SmallInteger, nullable=False),
    Column("width_s", Integer, nullable=False),
    Column("bucket_us", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("sum", Double, nullable=False),
    Column("min", Double, nullable=False),
    Column("max", Double, nullable=False),
    Column("last_ts_us", BigInteger, nullable=False),
    Column("last", Double, nullable=False),
    PrimaryKeyConstraint("sensor_ref", "slot", "width_s", "bucket_us", name="pk_rollups"),
)

# --- per-stream retention (issue 7; migration 0006) ----------------------------------------------

#: What retention has forgotten, per sensor: its raw readings before ``raw_us``, its 1-minute
#: rollups before ``minute_us``, its 1-hour rollups before ``hour_us`` (``NULL``: nothing yet).
#: ``sensor_ref`` 0 holds what went for every sensor at once (PostgreSQL's dropped day partitions).
#: Series read rollups wherever raw readings are gone; the rollup job leaves those minutes alone.
retention_cuts = Table(
    "retention_cuts",
    metadata,
    Column("sensor_ref", Integer, nullable=False),
    Column("raw_us", BigInteger),
    Column("minute_us", BigInteger),
    Column("hour_us", BigInteger),
    PrimaryKeyConstraint("sensor_ref", name="pk_retention_cuts"),
)

#: The retention policy in force (one row, ``name`` "policy"): the document, where it came from,
#: and the hash of the settings' policy last imported.
retention_policy = Table(
    "retention_policy",
    metadata,
    Column("name", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", name="pk_retention_policy"),
)
