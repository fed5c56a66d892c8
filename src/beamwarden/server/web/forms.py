"""Room: server/web. What the pages that change things share: post/redirect/get with a flash
message, the form's text checked, the actor an edit is logged under.

A state-changing form POSTs (with its CSRF token, :mod:`.security`), and the answer is a 303 back to
the page it came from, carrying a one-line message in a short-lived cookie (``bw_flash``) that
the next page shows once and clears. Bad input raises
:class:`~beamwarden.server.errors.InvalidRequest`: a 400 page that says what is wrong.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote, unquote

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from beamwarden.server.errors import InvalidRequest

from .rendering import render, safe_next
from .security import Viewer, set_cookie, with_security_headers

FLASH_COOKIE = "bw_flash"
#: a flash message is cut to this many characters (a cookie is small)
MAX_FLASH = 300

Level = Literal["ok", "bad"]


def redirect(
    request: Request, target: str, message: str | None = None, level: Level = "ok"
) -> Response:
    """303 to ``target`` (a path on this site), with a flash message for the next page."""
    response = RedirectResponse(safe_next(target), status_code=303)
    if message:
        set_cookie(request, response, FLASH_COOKIE, f"{level}:{quote(message[:MAX_FLASH])}", 60)
    return with_security_headers(response)


def take_flash(request: Request) -> tuple[Level, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    level, _, text = raw.partition(":")
    return ("bad" if level == "bad" else "ok"), unquote(text)[:MAX_FLASH]


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    viewer: Viewer,
    *,
    status: int = 200,
) -> Response:
    """Render a page, showing (and clearing) the flash message a redirect left."""
    flash = take_flash(request)
    response = render(request, template, {"flash": flash, **context}, viewer=viewer, status=status)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def text_field(value: str | None, what: str, max_length: int) -> str | None:
    """A form's text with its whitespace folded; ``None`` stays ``None`` (field not sent)."""
    if value is None:
        return None
    folded = " ".join(value.split())
    if len(folded) > max_length:
        raise InvalidRequest(f"{what} is longer than {max_length} characters", code="invalid_form")
    if any(ord(c) < 32 or c == "\x7f" for c in folded):
        raise InvalidRequest(f"{what} holds control characters", code="invalid_form")
    return folded


def names_field(value: str | None, what: str, max_items: int = 100) -> tuple[str, ...]:
    """A comma- or space-separated list (``node-1, node-2``) → its names, each checked."""
    text = text_field(value, what, 4000) or ""
    names = tuple(dict.fromkeys(n for n in text.replace(",", " ").split() if n))
    if len(names) > max_items:
        raise InvalidRequest(f"{what}: at most {max_items} names", code="invalid_form")
    for name in names:
        if len(name) > 128:
            raise InvalidRequest(f"{what}: a name is at most 128 characters", code="invalid_form")
    return names


def actor(viewer: Viewer) -> str:
    """Who an edit is logged under (as the API logs a token: ``kind:name``)."""
    return f"{viewer.principal.kind}:{viewer.principal.name}"
