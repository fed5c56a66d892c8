"""Room: server/api. Reading a request body within the limits: size, gzip, and nothing else.

The limit (``max_body_bytes``, 8 MiB) applies to the *decompressed* body, so a small gzip bomb is
refused with 413 as soon as it inflates past the limit, without inflating it all.
"""

from __future__ import annotations

import zlib

from fastapi import Request

from beamwarden.server.api.errors import BodyTooLarge, UnsupportedEncoding
from beamwarden.server.errors import InvalidRequest


async def read_body(request: Request, max_bytes: int) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding!r} is not supported; send gzip or none"
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise BodyTooLarge(f"the body is larger than {max_bytes} bytes; split the batch")
    gz = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip") else None
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
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
    return b"".join(parts)
