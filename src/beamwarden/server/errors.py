"""Room: server (errors; imports nothing of the server). The server's exception tree.

Services and adapters raise these; only ``server/api`` maps them to HTTP status codes and the error
envelope (services never raise HTTP errors)::

    ServerError                 base
    ├── StoreUnavailable        the database cannot be reached or written (→ 503 + Retry-After)
    ├── NotFound                no such node, token, … (→ 404)
    ├── AlreadyExists           e.g. enrolling a node id that exists (→ 409)
    ├── Unauthenticated         no credential, or an unknown or revoked one (→ 401)
    ├── Forbidden               the credential may not do this (→ 403)
    ├── Overloaded              more waits than the server holds; retry later (→ 429 + Retry-After)
    └── InvalidRequest          a request the schema allows but the server refuses (→ 400)
"""

from __future__ import annotations


class ServerError(Exception):
    """Base of the server's own errors. ``code`` is the envelope's snake_case code."""

    code = "server_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class StoreUnavailable(ServerError):
    code = "database_unavailable"

    def __init__(self, message: str = "the database is unavailable", *, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(ServerError):
    code = "not_found"


class AlreadyExists(ServerError):
    code = "already_exists"


class Unauthenticated(ServerError):
    code = "unauthenticated"


class Forbidden(ServerError):
    code = "forbidden"


class InvalidRequest(ServerError):
    code = "invalid_request"


class Overloaded(ServerError):
    """More readings wait for a commit than the server holds (or a caller tried too often); the
    sender retries after ``retry_after`` seconds."""

    code = "overloaded"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


#: each error's HTTP status, most specific first; the API and the dashboard answer alike
HTTP_STATUS: tuple[tuple[type[ServerError], int], ...] = (
    (StoreUnavailable, 503),
    (Overloaded, 429),
    (NotFound, 404),
    (AlreadyExists, 409),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (InvalidRequest, 400),
)


def http_status(exc: ServerError) -> int | None:
    """The HTTP status of a server error; ``None`` for one not in :data:`HTTP_STATUS` (a bug)."""
    for kind, status in HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return None
