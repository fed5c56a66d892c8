"""Room: server/api. Reading a request body within the limits: size, gzip, and nothing else.

The limit (``max_body_bytes``, 8 MiB) applies to the *decompressed* body, so a small gzip bomb is
refused with 413 as soon as it inflates past the limit, without inflating it all.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from beamwarden.server.errors import InvalidRequest, ServerError


class BodyTooLarge(ServerError):
    code = "body_too_large"


class UnsupportedEncoding(ServerError):
    code = "unsupported_content_encoding"


async def read_body(
    chunks: AsyncIterator[bytes], max_bytes: int, encoding: str | None, length: str | None
) -> bytes:
    """Join the body's ``chunks``, inflating gzip, refusing more than ``max_bytes`` (413).

    ``encoding`` and ``length`` are the raw ``Content-Encoding`` and ``Content-Length`` values.
    """
    encoding = (encoding or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding!r} is not supported; send gzip or none"
        )
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise BodyTooLarge(f"the body is larger than {max_bytes} bytes; split the batch")
    gz = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip") else None
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            if gz is not None:
                chunk = gz.decompress(chunk, max_bytes + 1 - size)
                if gz.unconsumed_tail:
                    raise BodyTooLarge(
                        f"the body inflates to more than {max_bytes} bytes; split the batch"
                    )
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(f"the body is larger than {max_bytes} bytes; split the batch")
            parts.append(chunk)
        if gz is not None:
            tail = gz.flush()
            size += len(tail)
            if size > max_bytes:
                raise BodyTooLarge(
                    f"the body inflates to more than {max_bytes} bytes; split the batch"
                )
            parts.append(tail)
            if not gz.eof:
                raise InvalidRequest("the gzip body is truncated", code="invalid_gzip")
    except zlib.error as exc:
        raise InvalidRequest(f"the body is not valid gzip: {exc}", code="invalid_gzip") from None
    return parts[0] if len(parts) == 1 else b"".join(parts)
