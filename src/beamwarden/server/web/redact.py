"""Room: server/web. Showing what holds a secret without the secret: notification channels and
database URLs, and error texts that might quote them.

A notification channel's URL carries its credential (a webhook token, a password; for many
apprise services the "host" itself is the token), so a page shows only the scheme, and for the
generic webhook schemes a masked host. :func:`scrub` removes any part of the known secret URLs
that an error message (apprise's, a driver's) might quote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

#: schemes whose host is a server of the operator's, not a credential (shown masked)
_SERVER_SCHEMES = frozenset(
    {
        "json",
        "jsons",
        "form",
        "forms",
        "xml",
        "xmls",
        "ntfy",
        "ntfys",
        "mailto",
        "mailtos",
        "gotify",
    }
    | {"gotifys", "matrix", "matrixs", "mqtt", "mqtts", "http", "https", "apprise", "apprises"}
)
MASK = "•••"
#: parts shorter than this are not scrubbed (they would blank out ordinary words)
_MIN_SECRET = 4


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    kind: str
    """The apprise scheme (``discord``, ``json``)."""
    where: str
    """A masked host (``ho•••.com:9000``) for the generic schemes, else empty."""
    usable: bool
    """apprise understood the URL (the channel is sending)."""


def mask_host(host: str) -> str:
    """``hooks.example.com`` → ``ho•••.com``; ``10.0.0.7`` → ``10•••7``."""
    if not host:
        return ""
    if re.fullmatch(r"[0-9.]+", host) or ":" in host:
        return f"{host[:2]}{MASK}{host[-1]}"
    labels = host.split(".")
    tail = f".{labels[-1]}" if len(labels) > 1 else ""
    return f"{host[:2]}{MASK}{tail}"


def describe(name: str, url: str, usable: bool) -> Channel:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower() or "?"
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return Channel(name, "?", "", usable)
    if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,31}", scheme):
        scheme = "?"
    where = ""
    if scheme in _SERVER_SCHEMES and host:
        where = mask_host(host) + (f":{port}" if port else "")
    return Channel(name, scheme, where, usable)


def secret_parts(urls: Iterable[str]) -> list[str]:
    """Every piece of the URLs that may be a credential, longest first."""
    parts: set[str] = set()
    for url in urls:
        parts.add(url)
        try:
            split = urlsplit(url)
        except ValueError:
            continue
        parts.update({split.netloc, split.path, split.query, split.fragment})
        for piece in (split.username, split.password, split.hostname):
            if piece:
                parts.update({piece, unquote(piece)})
        parts.update(p for p in re.split(r"[/@:]", split.netloc + split.path) if p)
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            parts.update({key + "=" + value, value})
    return sorted((p for p in parts if len(p) >= _MIN_SECRET), key=len, reverse=True)


def scrub(text: str | None, urls: Iterable[str]) -> str | None:
    """``text`` with every part of ``urls`` that could be a secret replaced by a mask."""
    if not text:
        return text
    for part in secret_parts(urls):
        text = text.replace(part, MASK)
    return text


def database_target(url: str) -> dict[str, str]:
    """What a page may say about the database: driver, host, port, database (or file) name; never
    the user name or the password."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return {"driver": "?"}
    scheme = split.scheme.split("+")[0].lower()
    if scheme == "sqlite":
        path = split.path[1:] if split.path.startswith("//") else split.path.lstrip("/")
        return {"driver": "sqlite", "file": path or ":memory:"}
    out = {"driver": "postgresql" if scheme.startswith("postgres") else scheme or "?"}
    if split.hostname:
        out["host"] = split.hostname
    if port:
        out["port"] = str(port)
    database = split.path.lstrip("/")
    if database:
        out["database"] = database
    return out
