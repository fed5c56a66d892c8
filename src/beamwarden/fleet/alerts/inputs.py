"""Room: fleet (pure). What one evaluation cycle looks at: streams, nodes, silences.

The server builds one :class:`Inputs` per cycle (from its stores; this room does no I/O). Each
stream carries the samples that arrived since the previous cycle, oldest first, and what the
staleness needs; each node its status, clock offset and telemetry metrics. The indexes that let
10 000 rules find their streams without scanning 10 000 streams each are built once, lazily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from beamwarden.protocol import NodeStatus

from .rules import MaintenanceWindow, Scope, Silence

__all__ = ["Inputs", "NodeInfo", "NodeInput", "StreamInput"]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a rule's scope can select a node by (the inventory's view)."""

    node_id: str
    role: str = ""
    site: str = ""
    room: str = ""


@dataclass(frozen=True, slots=True)
class StreamInput:
    """One series ``(node, sensor, field)`` in this cycle."""

    node: NodeInfo
    sensor_id: str
    sensor_type: str
    field: str
    #: samples since the last cycle, oldest first
    samples: tuple[tuple[datetime, float], ...] = ()
    #: the last reading ever seen (for ``stale``), and the learned interval (``fleet.staleness``)
    last_seen: datetime | None = None
    expected_interval_s: float | None = None
    #: the room of the sensor if it is not the node's (a BLE thermometer heard by a gateway)
    room: str | None = None

    @property
    def key(self) -> str:
        return f"{self.node.node_id}/{self.sensor_id}/{self.field}"

    @property
    def effective_room(self) -> str:
        return self.node.room if self.room is None else self.room

    def in_scope(self, scope: Scope) -> bool:
        node = self.node
        return scope.matches(
            node.node_id,
            node.role,
            node.site,
            self.effective_room,
            self.sensor_type,
            self.sensor_id,
        )


@dataclass(frozen=True, slots=True)
class NodeInput:
    """One node in this cycle."""

    node: NodeInfo
    status: NodeStatus
    clock_offset_s: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.node.node_id

    def in_scope(self, scope: Scope) -> bool:
        node = self.node
        return scope.matches(node.node_id, node.role, node.site, node.room)


_ANY_FIELD = "\x00any"


@dataclass(slots=True)
class _Index:
    by_field: dict[str, list[StreamInput]]
    by_field_node: dict[tuple[str, str], list[StreamInput]]
    by_field_room: dict[tuple[str, str], list[StreamInput]]
    nodes: dict[str, NodeInput]


def _build_index(streams: Sequence[StreamInput], nodes: Sequence[NodeInput]) -> _Index:
    index = _Index({}, {}, {}, {n.node.node_id: n for n in nodes})
    for stream in streams:
        node_id, room = stream.node.node_id, stream.effective_room
        for name in (stream.field, _ANY_FIELD):
            index.by_field.setdefault(name, []).append(stream)
            index.by_field_node.setdefault((name, node_id), []).append(stream)
            index.by_field_room.setdefault((name, room), []).append(stream)
    return index


@dataclass(slots=True)
class Inputs:
    """Everything one cycle evaluates rules against."""

    streams: Sequence[StreamInput] = ()
    nodes: Sequence[NodeInput] = ()
    silences: Sequence[Silence] = ()
    maintenance: Sequence[MaintenanceWindow] = ()
    _index: _Index | None = field(default=None, init=False, repr=False, compare=False)

    def _indexed(self) -> _Index:
        if self._index is None:
            self._index = _build_index(self.streams, self.nodes)
        return self._index

    def streams_for(self, scope: Scope, field_name: str | None) -> list[StreamInput]:
        """The streams of ``field_name`` (any field if ``None``) that ``scope`` selects."""
        index = self._indexed()
        name = _ANY_FIELD if field_name is None else field_name
        if scope.node:
            candidates = [s for n in scope.node for s in index.by_field_node.get((name, n), ())]
        elif scope.room:
            candidates = [s for r in scope.room for s in index.by_field_room.get((name, r), ())]
        else:
            candidates = index.by_field.get(name, [])
        return [s for s in candidates if s.in_scope(scope)]

    def nodes_for(self, scope: Scope) -> list[NodeInput]:
        """The nodes ``scope`` selects."""
        index = self._indexed()
        if scope.node:
            candidates = [index.nodes[n] for n in scope.node if n in index.nodes]
        else:
            candidates = list(index.nodes.values())
        return [n for n in candidates if n.in_scope(scope)]
