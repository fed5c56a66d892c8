"""Room: obs (stands alone). JSON encoding: orjson when it is installed, the stdlib otherwise.

Both produce compact UTF-8 JSON; only values already checked by :mod:`.records` are encoded.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is installed with beamwarden
    _orjson = None  # type: ignore[assignment]


def dumps(value: Any) -> bytes:
    """Compact JSON bytes; raises TypeError/ValueError on what JSON cannot hold."""
    if _orjson is not None:
        return _orjson.dumps(value)
    return json.dumps(  # pragma: no cover
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    if _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data)  # pragma: no cover
