"""Room: server (request context; imports nothing of the server). The current request's id.

A contextvar, so every log line written while serving a request carries its id.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")


def current_request_id() -> str:
    return request_id_var.get()
