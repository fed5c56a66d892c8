"""Room: obs (stands alone). Context fields carried by contextvars into every log record.

``with bind(request_id="r-1", node="n-7"): ...`` adds those attributes to each record logged in
the block, in this thread or asyncio task and the tasks it starts; nested binds add to (and may
override) the outer ones. Values are checked to be JSON-safe when bound, not per record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from .records import JsonValue, json_safe_attrs

_EMPTY: Mapping[str, JsonValue] = {}
_FIELDS: ContextVar[Mapping[str, JsonValue]] = ContextVar("beamwarden_obs_fields", default=_EMPTY)


@contextmanager
def bind(**fields: object) -> Iterator[Mapping[str, JsonValue]]:
    """Add ``fields`` to the records logged inside the block; yields the fields now in effect."""
    merged = {**_FIELDS.get(), **json_safe_attrs(fields, coerce=True)}
    token = _FIELDS.set(merged)
    try:
        yield merged
    finally:
        _FIELDS.reset(token)


def bound_fields() -> Mapping[str, JsonValue]:
    """The context fields in effect here (empty outside any :func:`bind`)."""
    return _FIELDS.get()
