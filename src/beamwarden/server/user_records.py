"""Room: server (records; imports nothing of ours). Dashboard users and their sessions, as data.

Exchanged between :mod:`beamwarden.server.services.users` (which defines the port) and
:mod:`beamwarden.server.store.users` (which implements it), like the other record modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a person may do in the dashboard: an admin changes things, a viewer looks."""

    ADMIN = "admin"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    password_hash: str
    role: Role
    created_us: int
    last_login_us: int | None = None
    disabled_us: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class SessionRow:
    """The server side of a login cookie (the cookie's value is stored only as a SHA-256 hash)."""

    id: int
    user_id: int
    csrf_token: str
    created_us: int
    seen_us: int
    expires_us: int
    ip_address: str | None = None
    user_agent: str | None = None
