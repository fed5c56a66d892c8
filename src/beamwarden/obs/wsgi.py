"""Room: obs (stands alone). The endpoints as a plain WSGI application (PEP 3333).

Serve it alone (``wsgiref``, gunicorn) or mount it under a prefix (werkzeug's
``DispatcherMiddleware``; :mod:`.flask_adapter`). ``PATH_INFO`` is the path below the mount point.
The body is returned as the lazy iterator of :class:`~.endpoints.Response`, so the server streams it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from .endpoints import ObsEndpoints, Request

StartResponse = Callable[..., Any]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class ObsWsgiApp:
    def __init__(self, endpoints: ObsEndpoints) -> None:
        self.endpoints = endpoints

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        request = Request(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            path=str(environ.get("PATH_INFO", "")) or "/",
            query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
        )
        response = self.endpoints.handle(request)
        start_response(f"{response.status} {_reason(response.status)}", response.headers)
        return response.body
