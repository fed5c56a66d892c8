"""Room: server/services. The ports: what services need from adapters, as Protocols.

Adapters (``server/store``) satisfy these structurally and never import this module. A method that
cannot reach or write the database raises :class:`~beamwarden.server.errors.StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from beamwarden.protocol import Scope
from beamwarden.server.records import (
    BatchOutcome,
    EventFilter,
    EventRow,
    Heartbeat,
    NewEvent,
    NodeBeatRow,
    NodeFilter,
    NodeListRow,
    NodePackedRow,
    NodeRow,
    OperatorFields,
    ReadingBatch,
    ReadingFilter,
    ReadingRow,
    ReportedFields,
    SensorLatest,
    SeriesQuery,
    SeriesRow,
    TelemetryQuery,
    TokenRow,
)


class ReadingStore(Protocol):
    async def write_readings(self, batches: list[ReadingBatch]) -> list[BatchOutcome]:
        """Store all batches in ONE transaction and return only once it is durably committed.

        Readings whose ``reading_id`` was stored before (or earlier in these batches) are not
        stored again and count as duplicates; one arriving with a different payload is also listed
        in ``conflicts``. Every reading's node must exist (the service checks before).
        """
        ...

    async def list_readings(
        self, flt: ReadingFilter, limit: int, after: tuple[int, int] | None
    ) -> list[ReadingRow]:
        """Readings matching ``flt``, ordered by ``(ts_us, id)``, strictly after ``after``."""
        ...

    def iter_readings(self, flt: ReadingFilter, chunk: int = 5000) -> AsyncIterator[ReadingRow]:
        """All readings matching ``flt`` in ``(ts_us, id)`` order, fetched ``chunk`` at a time."""
        ...

    async def count_readings(self, flt: ReadingFilter) -> int: ...

    async def series(self, query: SeriesQuery) -> list[SeriesRow]:
        """Buckets ``[since, until)`` of one numeric field, oldest first, at most ``query.limit``."""
        ...

    async def telemetry_series(self, query: TelemetryQuery) -> list[SeriesRow]:
        """Buckets ``[since, until)`` of one numeric heartbeat metric of one node (by the server's
        receive time), oldest first, at most ``query.limit``; an unknown node gives none."""
        ...

    async def heartbeat_times(
        self, node_id: str, since_us: int, until_us: int, limit: int
    ) -> list[int]:
        """Receive times of the node's heartbeats in ``[since, until)``, oldest first (the newest
        ``limit``)."""
        ...

    async def latest_metrics_of(self, node_id: str) -> dict[str, Any] | None:
        """The metrics of the node's newest heartbeat (``None`` before any)."""
        ...

    async def sensors_latest(self, owner: str | None, limit: int) -> list[SensorLatest]:
        """Sensors of ``owner`` (a node id; '' for fleet-wide ids; ``None``: all), ordered by
        owner and sensor id, at most ``limit``, each with its newest reading."""
        ...


class NodeStore(Protocol):
    async def create_node(self, node_id: str, role: str, now_us: int) -> NodeRow:
        """Raises AlreadyExists if the node id is taken."""
        ...

    async def get_node(self, node_id: str) -> NodeRow | None: ...

    async def list_nodes(self, limit: int, after: str | None) -> list[NodeRow]:
        """Nodes ordered by node_id, strictly after ``after``."""
        ...

    async def record_registration(
        self, node_id: str, reported: ReportedFields, now_us: int
    ) -> NodeRow:
        """Replace what the node reported; never touches operator fields. Raises NotFound."""
        ...

    async def set_operator_fields(self, node_id: str, fields: OperatorFields) -> NodeRow: ...

    async def set_enrolment_open(self, node_id: str, is_open: bool) -> NodeRow: ...

    async def revoke_node(self, node_id: str, now_us: int) -> NodeRow:
        """Mark the node revoked and revoke all its tokens."""
        ...

    async def write_heartbeats(self, beats: list[Heartbeat]) -> None:
        """Insert telemetry rows and update each node's last-heartbeat facts, in one transaction."""
        ...


class TokenStore(Protocol):
    async def create_token(
        self,
        token_hash: bytes,
        kind: str,
        name: str,
        scopes: frozenset[Scope],
        node_id: str | None,
        now_us: int,
        user_id: int | None = None,
    ) -> TokenRow: ...

    async def find_token(self, token_hash: bytes) -> TokenRow | None:
        """The token with this SHA-256 hash, revoked or not."""
        ...

    async def list_tokens(self) -> list[TokenRow]: ...

    async def revoke_token(self, token_id: int, now_us: int) -> TokenRow:
        """Raises NotFound."""
        ...

    async def revoke_node_tokens(self, node_id: str, now_us: int) -> int:
        """Revoke every live token of the node; returns how many."""
        ...


class EventStore(Protocol):
    async def add_event(self, event: NewEvent) -> int: ...

    async def add_events(self, events: Sequence[NewEvent]) -> None:
        """Several events in one transaction (all or none)."""
        ...

    async def list_events(
        self, flt: EventFilter, limit: int, before_id: int | None
    ) -> list[EventRow]:
        """Newest first (by id), strictly before ``before_id``."""
        ...


class NodeListingStore(Protocol):
    """What fleet listings read (``services.fleet_views``): few columns, many nodes."""

    async def list_node_rows(
        self, flt: NodeFilter, limit: int, after: str | None
    ) -> list[NodeListRow]:
        """Nodes matching ``flt`` ordered by node_id, strictly after ``after``; tags as their
        stored JSON text."""
        ...

    async def list_node_packed(
        self, flt: NodeFilter, limit: int, after: str | None
    ) -> list[NodePackedRow]:
        """As ``list_node_rows``, the strings, integers and boolean of each row packed into one
        text by the database."""
        ...

    def unpack_node(self, row: NodePackedRow) -> NodeListRow:
        """The ``NodeListRow`` of a row of ``list_node_packed``."""
        ...

    async def node_beats(self, flt: NodeFilter) -> list[NodeBeatRow]:
        """``(node_id, last_heartbeat_us, interval_seconds)`` of every node matching ``flt``."""
        ...

    async def last_reading_us(self, node_ids: Sequence[str]) -> dict[str, int]:
        """The newest reading time of each of these nodes' own sensors (none: left out)."""
        ...


class Store(ReadingStore, NodeStore, NodeListingStore, TokenStore, EventStore, Protocol):
    """Everything the services need from the database."""

    async def ping(self) -> float:
        """Run a trivial query; return its latency in seconds. Raises StoreUnavailable."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DatabaseInfo(Protocol):
    """What a store may tell about itself for the diagnostics page (never a secret)."""

    async def database_info(self) -> dict[str, str | None]:
        """``version`` (the database server's), ``revision`` (the schema's migration)."""
        ...


class ReadingSink(Protocol):
    """What the ingest path writes to: the store, or nothing (to measure the cost of storage)."""

    async def write_readings(self, batches: list[ReadingBatch]) -> list[BatchOutcome]: ...
