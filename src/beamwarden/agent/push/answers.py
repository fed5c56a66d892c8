"""Room: agent (push). What the server's answer means for the sender: PROTOCOL.md's sender table.

=========================================  ===========================================================
answer                                     :class:`Action`
=========================================  ===========================================================
2xx                                        ``STORED``: forget the batch
400 naming items (``details[].index``)     ``INVALID``: exactly those items become dead letters,
                                           the rest is resent at once
400 naming no item, 401, 403, 404, 405,    ``REFUSED``: a configuration problem — keep everything,
other 4xx                                  report loudly, retry slowly; never drop data for it
409                                        ``CONFLICT``: another instance holds the node — stop
                                           writing, say who holds it
413                                        ``TOO_LARGE``: split the batch and resend
429, 503                                   ``OVERLOADED``: retry after ``Retry-After``
other 5xx, network error, timeout          ``TRANSIENT``: exponential backoff with jitter, for ever
=========================================  ===========================================================

A 400 that does not look like one of our error envelopes is ``REFUSED`` (a proxy, a wrong URL),
never a reason to drop anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    STORED = "stored"
    INVALID = "invalid"
    REFUSED = "refused"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    OVERLOADED = "overloaded"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do about one answer; ``invalid`` maps a batch index to why it was refused."""

    action: Action
    status: int | None  # None: no answer (network error, timeout)
    message: str
    retry_after_s: float | None = None
    invalid: dict[int, str] = field(default_factory=dict)
    #: the error envelope's ``code`` (``lease_held``, ``invalid_transition`` …), when there is one
    code: str | None = None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _envelope(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else None


def _describe(status: int, error: dict[str, Any] | None, body: bytes) -> str:
    if error is None:
        text = body[:200].decode("utf-8", "replace").strip()
        return f"HTTP {status}" + (f": {text}" if text else "")
    code = error.get("code", "?")
    message = error.get("message", "")
    request_id = error.get("request_id")
    suffix = f" (request {request_id})" if request_id else ""
    return f"HTTP {status} {code}: {message}{suffix}"


def _invalid_items(error: dict[str, Any], batch_size: int) -> dict[int, str]:
    out: dict[int, list[str]] = {}
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        index = detail.get("index")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < batch_size:
            where = detail.get("field") or "(item)"
            out.setdefault(index, []).append(f"{where}: {detail.get('message', 'invalid')}")
    return {index: "; ".join(problems) for index, problems in out.items()}


def classify(
    status: int, headers: Mapping[str, str], body: bytes, batch_size: int, now: datetime
) -> Verdict:
    """The :class:`Verdict` for an answer to a batch of ``batch_size`` readings."""
    if 200 <= status < 300:
        return Verdict(Action.STORED, status, f"HTTP {status}")
    error = _envelope(body)
    message = _describe(status, error, body)
    code = error.get("code") if error is not None else None
    if status == 409:
        return Verdict(
            Action.CONFLICT, status, message, code=code if isinstance(code, str) else None
        )
    if status == 400:
        invalid = _invalid_items(error, batch_size) if error is not None else {}
        if invalid:
            return Verdict(Action.INVALID, status, message, invalid=invalid)
        return Verdict(Action.REFUSED, status, message)
    if status == 413:
        return Verdict(Action.TOO_LARGE, status, message)
    if status in (429, 503):
        after = retry_after_seconds(headers.get("retry-after"), now)
        return Verdict(Action.OVERLOADED, status, message, retry_after_s=after)
    if 400 <= status < 500:
        return Verdict(Action.REFUSED, status, message)
    return Verdict(Action.TRANSIENT, status, message)


def no_answer(exc: BaseException) -> Verdict:
    """The verdict for a request that got no answer (connection refused, reset, timeout)."""
    text = str(exc) or exc.__class__.__name__
    return Verdict(Action.TRANSIENT, None, f"no answer: {exc.__class__.__name__}: {text}")
