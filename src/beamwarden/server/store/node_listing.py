"""Room: server/store (adapter). The statements of a node listing (``SqlStore.list_node_rows``,
``node_beats``, ``last_reading_us``): only the columns a node record shows, the filters of
:class:`~beamwarden.server.records.NodeFilter` in SQL, tags left as their stored JSON text.

Imports SQLAlchemy, msgspec, ``records`` and the schema only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
)

from beamwarden.server.records import NodeFilter, NodeListRow, NodePackedRow

from .schema import nodes, readings, sensors

_N = nodes.c

#: the columns of ``NodeListRow``, in its order; the tags as text (no JSON decoding on the way)
LIST_COLUMNS = (
    _N.node_id,
    _N.role,
    _N.display_name,
    _N.site,
    _N.room,
    cast(_N.operator_tags, Text).label("operator_tags_json"),
    _N.hostname,
    _N.ip_address,
    _N.software_version,
    cast(_N.reported_tags, Text).label("reported_tags_json"),
    _N.created_us,
    _N.registered_us,
    _N.last_heartbeat_us,
    _N.interval_seconds,
    _N.uptime_seconds,
    _N.instance_id,
    _N.state,
    _N.protocol_version,
    _N.clock_offset_seconds,
    _N.enrolment_open,
)
BEAT_COLUMNS = (_N.node_id, _N.last_heartbeat_us, _N.interval_seconds)
_LISTED = {column.name: column for column in LIST_COLUMNS}
#: the columns of a ``NodeListRow`` a packed listing packs into one text, in order (strings,
#: integers, a boolean: both packings keep them exactly)
PACKED_FIELDS = (
    "role",
    "display_name",
    "site",
    "room",
    "operator_tags_json",
    "hostname",
    "ip_address",
    "software_version",
    "reported_tags_json",
    "created_us",
    "registered_us",
    "last_heartbeat_us",
    "instance_id",
    "state",
    "protocol_version",
    "enrolment_open",
)
_INTEGERS = {"created_us", "registered_us", "last_heartbeat_us"}
#: PostgreSQL's text of each packed field → its value
_CONVERT: tuple[Callable[[str], Any], ...] = tuple(
    int if name in _INTEGERS else (lambda text: text == "t") if name == "enrolment_open" else str
    for name in PACKED_FIELDS
)
_json = msgspec.json.Decoder().decode


def _where(flt: NodeFilter) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = []
    if flt.role is not None:
        terms.append(_N.role == flt.role)
    if flt.site is not None:
        terms.append(_N.site == flt.site)
    if flt.tag is not None:
        key, value = flt.tag
        terms.append(
            or_(
                _N.operator_tags[key].as_string() == value,
                _N.reported_tags[key].as_string() == value,
            )
        )
    if flt.search:
        terms.append(
            or_(
                *(
                    column.icontains(flt.search, autoescape=True)
                    for column in (_N.node_id, _N.display_name, _N.hostname, _N.ip_address)
                )
            )
        )
    if not flt.include_revoked:
        terms.append(_N.revoked_us.is_(None))
    return terms


def list_statement(flt: NodeFilter, limit: int, after: str | None) -> Select[Any]:
    """Nodes matching ``flt`` ordered by node id, strictly after ``after``, at most ``limit``."""
    terms = _where(flt)
    if after is not None:
        terms.append(_N.node_id > after)
    return select(*LIST_COLUMNS).where(and_(True, *terms)).order_by(_N.node_id).limit(limit)


def packed_statement(flt: NodeFilter, *, after: bool, sqlite: bool) -> Select[Any]:
    """As :func:`list_statement`, the columns of ``NodePackedRow``: the database packs the
    strings, integers and the boolean of each row into one text, exactly (SQLite: a JSON array;
    PostgreSQL: a row's text, a third cheaper than ``json_build_array``), the floats stay columns.
    The bound parameters ``after`` (if ``after``) and ``limit`` are left to bind (it is compiled
    once). :func:`unpack` reads ``packed`` back."""
    pack = func.json_array if sqlite else func.row
    packed = cast(pack(*(_LISTED[name] for name in PACKED_FIELDS)), Text).label("packed")
    terms = _where(flt)
    if after:
        terms.append(_N.node_id > bindparam("after", type_=String))
    return (
        select(_N.node_id, packed, _N.interval_seconds, _N.uptime_seconds, _N.clock_offset_seconds)
        .where(and_(True, *terms))
        .order_by(_N.node_id)
        .limit(bindparam("limit", type_=Integer))
    )


def unpack(row: NodePackedRow, *, sqlite: bool) -> NodeListRow:
    """The ``NodeListRow`` of a row of :func:`packed_statement`."""
    node_id, packed, interval, uptime, clock_offset = row
    if sqlite:
        values = _json(packed)
    else:
        values = [
            None if text is None else convert(text)
            for convert, text in zip(_CONVERT, _row_fields(packed), strict=True)
        ]
    return NodeListRow(
        node_id=node_id,
        interval_seconds=interval,
        uptime_seconds=uptime,
        clock_offset_seconds=clock_offset,
        **dict(zip(PACKED_FIELDS, values, strict=True)),
    )


def _row_fields(text: str) -> list[str | None]:
    """The fields of PostgreSQL's text of a row, ``(a,"b c",,"")``: a NULL is empty, a value
    with a quote, backslash, parenthesis, comma or space (or an empty one) is quoted, its quotes
    and backslashes doubled (``record_out``)."""
    fields: list[str | None] = []
    end = len(text) - 1  # the closing parenthesis
    i = 1
    while True:
        if text[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                char = text[i]
                if char == '"' and text[i + 1] == '"':
                    chars.append('"')
                    i += 2
                elif char == '"':
                    i += 1
                    break
                elif char == "\\":
                    chars.append(text[i + 1])
                    i += 2
                else:
                    chars.append(char)
                    i += 1
            fields.append("".join(chars))
        else:
            comma = text.find(",", i, end)
            stop = end if comma < 0 else comma
            fields.append(text[i:stop] if stop > i else None)
            i = stop
        if i >= end:
            return fields
        i += 1  # the comma
        if i == end:  # a NULL last
            fields.append(None)
            return fields


def beats_statement(flt: NodeFilter) -> Select[Any]:
    """``(node_id, last_heartbeat_us, interval_seconds)`` of every node matching ``flt``."""
    return select(*BEAT_COLUMNS).where(and_(True, *_where(flt)))


def last_reading_statement(node_ids: Sequence[str]) -> Select[Any]:
    """The newest reading time of each node's own sensors (one index probe per sensor)."""
    newest = (
        select(func.max(readings.c.ts_us))
        .where(readings.c.sensor_ref == sensors.c.id)
        .scalar_subquery()
    )
    return (
        select(sensors.c.owner, func.max(newest))
        .where(sensors.c.owner.in_(list(node_ids)))
        .group_by(sensors.c.owner)
    )
