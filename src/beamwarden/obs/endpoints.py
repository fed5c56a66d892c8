"""Room: obs (stands alone). The HTTP endpoints, independent of any server interface.

:class:`ObsEndpoints` answers a :class:`Request` with a :class:`Response` whose body is an
iterator of byte chunks, produced lazily; :mod:`.asgi` and :mod:`.wsgi` adapt it.

=========================  ==================================================================
``GET /logs``              NDJSON, streamed page by page: ``?since=&level=&limit=&cursor=``
``GET /logs.json``         one page: ``{"items": [...], "next_cursor": "<id>" | null}``
``GET /metrics``           NDJSON sample history: ``?since=&name=&limit=&cursor=``
``GET /metrics/prometheus`` the last values, Prometheus text (OpenMetrics if the Accept
                           header asks for ``application/openmetrics-text``)
``GET /metrics.json``      the last values: ``{"items": [...]}``
``GET /health``            ``{"status": "ok", "store": {...}}`` (503 when the store fails)
=========================  ==================================================================

Parameters are checked before anything is sent: an unknown, repeated or malformed one is a
400 with ``{"error": {"code": "invalid_parameter", "message", "details": {"parameter"}}}`` —
never a 500. Bodies are gzip-compressed when ``Accept-Encoding`` allows gzip. An item that
cannot be encoded is skipped and counted (``bad_items``); if the store fails in the middle of a
stream, the stream ends with one ``{"error": ...}`` line.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from . import _json
from .clock import Clock, SystemClock
from .collector import render_prometheus, wants_openmetrics
from .errors import InvalidQuery
from .metrics import MetricRegistry
from .query import (
    MAX_PAGE_LIMIT,
    LogQuery,
    SampleQuery,
    log_query_from_params,
    sample_query_from_params,
    single_values,
)
from .records import JsonValue, LogRecord, MetricSample
from .store import ObsStore

NDJSON = "application/x-ndjson"
JSON = "application/json"
#: items read from the store per page of a stream
PAGE_SIZE = 1_000
#: most query parameters parsed from one request
MAX_FIELDS = 20

_log = logging.getLogger("beamwarden.obs")


@dataclass(frozen=True, slots=True)
class Request:
    """``path`` is relative to where the endpoints are mounted; header names are lower-case."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]


def _json_response(
    status: int, data: object, extra: list[tuple[str, str]] | None = None
) -> Response:
    return Response(status, [("content-type", JSON), *(extra or [])], [_json.dumps(data)])


def error_response(status: int, code: str, message: str, **details: JsonValue) -> Response:
    body: dict[str, JsonValue] = {"code": code, "message": message}
    if details:
        body["details"] = dict(details)
    return _json_response(status, {"error": body})


def log_json(record: LogRecord) -> dict[str, JsonValue]:
    out = record.as_json()
    out["time"] = datetime.fromtimestamp(record.ts, UTC).isoformat(timespec="microseconds")
    return out


def sample_json(sample: MetricSample) -> dict[str, JsonValue]:
    return sample.as_json()


def accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in {"gzip", "*"}:
            q = params.strip()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def gzip_chunks(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


class ObsEndpoints:
    """The endpoints over one store (and, for current metric values, one registry)."""

    def __init__(
        self,
        store: ObsStore,
        *,
        registry: MetricRegistry | None = None,
        clock: Clock | None = None,
        health: Callable[[], Mapping[str, JsonValue]] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock or SystemClock()
        self.health_details = health
        self.page_size = page_size
        #: stored items skipped because they could not be encoded
        self.bad_items = 0
        self._routes: dict[str, Callable[[dict[str, list[str]], Request], Response]] = {
            "/logs": self._logs,
            "/logs.json": self._logs_json,
            "/metrics": self._metrics,
            "/metrics.json": self._metrics_json,
            "/metrics/prometheus": self._prometheus,
            "/health": self._health,
        }

    @property
    def paths(self) -> list[str]:
        return list(self._routes)

    def handle(self, request: Request) -> Response:
        route = self._routes.get(request.path.rstrip("/") or "/")
        if route is None:
            return error_response(404, "not_found", f"no endpoint {request.path[:100]!r}")
        if request.method not in {"GET", "HEAD"}:
            response = error_response(405, "method_not_allowed", "only GET and HEAD")
            response.headers.append(("allow", "GET, HEAD"))
            return response
        try:
            params = parse_qs(request.query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:
            return error_response(
                400, "invalid_parameter", f"more than {MAX_FIELDS} parameters", parameter=""
            )
        try:
            response = route(params, request)
        except InvalidQuery as exc:
            return error_response(400, "invalid_parameter", exc.message, parameter=exc.parameter)
        except Exception as exc:
            _log.exception("obs endpoint %s failed", request.path)
            return error_response(
                503, "store_unavailable", f"the store failed: {type(exc).__name__}"
            )
        if request.method == "HEAD":
            response.body = []
        elif accepts_gzip(request.headers.get("accept-encoding", "")):
            response.body = gzip_chunks(response.body)
            response.headers.append(("content-encoding", "gzip"))
        response.headers.append(("vary", "Accept-Encoding"))
        return response

    # -- logs -------------------------------------------------------------------------------

    def _logs(self, params: dict[str, list[str]], _: Request) -> Response:
        query = log_query_from_params(params, self.clock.now())
        return Response(200, [("content-type", NDJSON)], self._stream(query, self._log_page))

    def _log_page(self, query: LogQuery | SampleQuery, after: int, limit: int) -> list[Any]:
        assert isinstance(query, LogQuery)
        return self.store.read_logs(dataclasses.replace(query, after_id=after, limit=limit))

    def _logs_json(self, params: dict[str, list[str]], _: Request) -> Response:
        query = log_query_from_params(params, self.clock.now(), MAX_PAGE_LIMIT)
        records = self.store.read_logs(query)
        items = self._encode_all(records, log_json)
        next_cursor = str(records[-1].id) if len(records) >= query.limit else None
        return _json_response(200, {"items": items, "next_cursor": next_cursor})

    # -- metrics ----------------------------------------------------------------------------

    def _metrics(self, params: dict[str, list[str]], _: Request) -> Response:
        query = sample_query_from_params(params, self.clock.now())
        return Response(200, [("content-type", NDJSON)], self._stream(query, self._sample_page))

    def _sample_page(self, query: LogQuery | SampleQuery, after: int, limit: int) -> list[Any]:
        assert isinstance(query, SampleQuery)
        return self.store.read_samples(dataclasses.replace(query, after_id=after, limit=limit))

    def _latest(self) -> list[MetricSample]:
        if self.registry is not None:
            return self.registry.latest_samples()
        return self.store.latest_samples()

    def _metrics_json(self, params: dict[str, list[str]], _: Request) -> Response:
        single_values(params, ())
        items = self._encode_all(self._latest(), sample_json)
        return _json_response(200, {"items": items})

    def _prometheus(self, params: dict[str, list[str]], request: Request) -> Response:
        single_values(params, ())
        openmetrics = wants_openmetrics(request.headers.get("accept", ""))
        body, content_type = render_prometheus(self.registry or self.store, openmetrics)
        return Response(200, [("content-type", content_type)], [body])

    # -- health -----------------------------------------------------------------------------

    def _health(self, params: dict[str, list[str]], _: Request) -> Response:
        single_values(params, ())
        try:
            stats = dataclasses.asdict(self.store.stats())
        except Exception as exc:
            return _json_response(503, {"status": "unavailable", "error": type(exc).__name__})
        body: dict[str, Any] = {"status": "ok", "store": stats, "bad_items": self.bad_items}
        if self.health_details is not None:
            body.update(self.health_details())
        return _json_response(200, body)

    # -- encoding ---------------------------------------------------------------------------

    def _encode_all(self, items: Iterable[Any], encode: Callable[[Any], object]) -> list[object]:
        out: list[object] = []
        for item in items:
            try:
                data = encode(item)
                _json.dumps(data)
            except (TypeError, ValueError, OverflowError, OSError):
                self.bad_items += 1
                continue
            out.append(data)
        return out

    def _stream(
        self,
        query: LogQuery | SampleQuery,
        read: Callable[[LogQuery | SampleQuery, int, int], list[Any]],
    ) -> Iterator[bytes]:
        encode = log_json if isinstance(query, LogQuery) else sample_json
        dumps = _json.dumps
        remaining = query.limit
        after = query.after_id
        while remaining > 0:
            want = min(remaining, self.page_size)
            try:
                page = read(query, after, want)
            except Exception as exc:
                _log.exception("obs stream failed")
                yield dumps({"error": {"code": "store_unavailable", "message": type(exc).__name__}})
                yield b"\n"
                return
            if not page:
                return
            chunk = bytearray()
            for item in page:
                try:
                    chunk += dumps(encode(item))
                except (TypeError, ValueError, OverflowError, OSError):
                    self.bad_items += 1
                    continue
                chunk += b"\n"
            yield bytes(chunk)
            after = page[-1].id
            remaining -= len(page)
            if len(page) < want:
                return
