"""Room: server (errors; imports nothing of the server). The server's exception tree.

Services and adapters raise these; only ``server/api`` maps them to HTTP status codes and the error
envelope (services never raise HTTP errors)::

    ServerError                 base
    ├── StoreUnavailable        the database cannot be reached or written (→ 503 + Retry-After)
    ├── NotFound                no such node, token, … (→ 404)
    ├── AlreadyExists           e.g. enrolling a node id that exists (→ 409)
    ├── Unauthenticated         no credential, or an unknown or revoked one (→ 401)
    ├── Forbidden               the credential may not do this (→ 403)
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
