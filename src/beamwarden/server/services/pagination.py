"""Room: server/services. Opaque cursors for every list (``{"items", "next_cursor"}``).

A cursor is the position after the last item of a page, as URL-safe base64 of a small JSON array,
tagged with the list it belongs to so a cursor of one list is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from beamwarden.server.errors import InvalidRequest


def encode_cursor(kind: str, position: list[Any]) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The position in ``cursor``; raises InvalidRequest (``invalid_cursor``) if it is not ours."""
    try:
        if len(cursor) > 512:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest(
            "the cursor is not one this server gave", code="invalid_cursor"
        ) from None
    if (
        not isinstance(value, list)
        or len(value) != len(types) + 1
        or value[0] != kind
        or not all(type(v) is t for v, t in zip(value[1:], types, strict=True))
    ):
        raise InvalidRequest("the cursor is not one this list gave", code="invalid_cursor")
    return value[1:]
