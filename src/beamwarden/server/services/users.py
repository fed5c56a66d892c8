"""Room: server/services. Dashboard users: passwords, login with rate limiting, sessions, roles,
personal API tokens.

Passwords are hashed with argon2id (argon2-cffi; hashing runs in a worker thread, it takes tens
of milliseconds by design). A session is a random cookie value stored only as its SHA-256 hash,
with a CSRF token of its own; it ends after ``session_idle_s`` without use or ``session_max_s``
after login, at logout, or when its user is disabled. Failed logins are counted per client address
and per user name in a sliding window; past the limit the next attempt is refused with 429 and
``Retry-After`` (per server process: each replica counts its own).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from beamwarden.protocol import Scope
from beamwarden.protocol.vocabulary import is_ident
from beamwarden.server.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    Overloaded,
    Unauthenticated,
)
from beamwarden.server.records import Principal, TokenRow, to_us
from beamwarden.server.services.activity import ActivityLog
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.credentials import Credentials, IssuedToken, hash_token
from beamwarden.server.user_records import Role, SessionRow, UserRow

__all__ = [
    "LoginLimiter",
    "SessionView",
    "TooManyAttempts",
    "UserConfig",
    "UserService",
    "UserStore",
    "session_principal",
]

#: scopes a session or a personal token of each role carries
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset({Scope.READ, Scope.METRICS, Scope.ADMIN}),
    Role.VIEWER: frozenset({Scope.READ, Scope.METRICS}),
}
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class TooManyAttempts(Overloaded):
    """Too many failed logins from this address or for this name; try again later (429)."""

    code = "too_many_attempts"


class UserStore(Protocol):
    """What the user service needs from an adapter (``server/store/users.py``)."""

    async def create_user(
        self, username: str, password_hash: str, role: Role, now_us: int
    ) -> UserRow: ...
    async def get_user(self, user_id: int) -> UserRow | None: ...
    async def find_user(self, username: str) -> UserRow | None: ...
    async def list_users(self) -> list[UserRow]: ...
    async def update_user(self, user_id: int, **values: object) -> UserRow: ...
    async def create_session(
        self,
        token_hash: bytes,
        user_id: int,
        csrf_token: str,
        now_us: int,
        expires_us: int,
        ip_address: str | None,
        user_agent: str | None,
    ) -> SessionRow: ...
    async def find_session(self, token_hash: bytes) -> tuple[SessionRow, UserRow] | None: ...
    async def touch_session(self, session_id: int, seen_us: int, expires_us: int) -> None: ...
    async def delete_session(self, session_id: int) -> None: ...
    async def delete_user_sessions(self, user_id: int) -> int: ...
    async def prune_sessions(self, now_us: int) -> int: ...
    async def count_users(self) -> int: ...


@dataclass(frozen=True, slots=True)
class UserConfig:
    session_idle_s: float = 7 * 86_400
    session_max_s: float = 30 * 86_400
    login_max_failures: int = 5
    login_window_s: float = 300.0


@dataclass(frozen=True, slots=True)
class SessionView:
    """A live session: who, and the CSRF token every form of theirs must carry."""

    session: SessionRow
    user: UserRow

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


def session_principal(user: UserRow) -> Principal:
    """The credential a logged-in person acts with (token id 0: no API token)."""
    return Principal(0, "session", user.username, ROLE_SCOPES[user.role])


class LoginLimiter:
    """Failed logins per key in a sliding window; time passed in (seconds)."""

    def __init__(self, max_failures: int, window_s: float):
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, keys: tuple[str, ...], now: float) -> float:
        """Seconds until a key may try again (0: it may now)."""
        wait = 0.0
        for key in keys:
            times = self._failures.get(key)
            if not times:
                continue
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.max_failures:
                wait = max(wait, times[0] + self.window_s - now)
            if not times:
                del self._failures[key]
        return wait

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            times = self._failures.setdefault(key, deque(maxlen=self.max_failures * 2))
            times.append(now)

    def succeeded(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._failures.pop(key, None)


class UserService:
    def __init__(
        self,
        store: UserStore,
        credentials: Credentials,
        activity: ActivityLog,
        clock: Clock,
        config: UserConfig | None = None,
        hasher: PasswordHasher | None = None,
    ):
        self._store = store
        self._credentials = credentials
        self._activity = activity
        self._clock = clock
        self.config = config or UserConfig()
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        self.limiter = LoginLimiter(self.config.login_max_failures, self.config.login_window_s)

    # -- users ------------------------------------------------------------------------------

    async def add_user(
        self, username: str, password: str, role: Role, actor: str | None = None
    ) -> UserRow:
        if not is_ident(username):
            raise InvalidRequest(
                "a user name is 1–64 characters of a-z, 0-9, '.', '_', '-'", code="invalid_username"
            )
        check_password(password)
        digest = await asyncio.to_thread(self._hasher.hash, password)
        user = await self._store.create_user(username, digest, role, self._now_us())
        await self._activity.record(
            "user_added", f"user {username} added ({role.value})", actor=actor, data={"role": role}
        )
        return user

    async def list_users(self) -> list[UserRow]:
        return await self._store.list_users()

    async def count_users(self) -> int:
        return await self._store.count_users()

    async def user(self, username: str) -> UserRow:
        user = await self._store.find_user(username)
        if user is None:
            raise NotFound(f"no user {username!r}", code="unknown_user")
        return user

    async def set_password(self, username: str, password: str, actor: str | None = None) -> None:
        user = await self.user(username)
        check_password(password)
        digest = await asyncio.to_thread(self._hasher.hash, password)
        await self._store.update_user(user.id, password_hash=digest)
        await self._store.delete_user_sessions(user.id)
        await self._activity.record("user_password_set", f"password of {username} set", actor=actor)

    async def change_own_password(self, username: str, current: str, new: str) -> None:
        """A person changes their password, proving the current one (failures count towards the
        login rate limit of their name). Ends all their sessions, like :meth:`set_password`."""
        now = self._clock.now().timestamp()
        keys = (f"user:{username.lower()[:64]}",)
        wait = self.limiter.retry_after(keys, now)
        if wait > 0:
            raise TooManyAttempts("too many wrong passwords; try again later", int(wait) + 1)
        user = await self.user(username)
        if not await self._verify(user, current):
            self.limiter.failed(keys, now)
            raise InvalidRequest("the current password is wrong", code="wrong_password")
        await self.set_password(username, new, actor=username)

    async def set_role(self, username: str, role: Role, actor: str | None = None) -> UserRow:
        user = await self.user(username)
        if user.role is role:
            return user
        await self._guard_last_admin(user)
        updated = await self._store.update_user(user.id, role=role)
        await self._activity.record(
            "user_role_changed",
            f"{username}: {user.role.value} → {role.value}",
            actor=actor,
            data={"before": user.role, "after": role},
        )
        return updated

    async def set_disabled(self, username: str, disabled: bool, actor: str | None = None) -> None:
        user = await self.user(username)
        if disabled:
            await self._guard_last_admin(user)
        await self._store.update_user(user.id, disabled_us=self._now_us() if disabled else None)
        if disabled:
            await self._store.delete_user_sessions(user.id)
        await self._activity.record(
            "user_disabled" if disabled else "user_enabled",
            f"user {username} {'disabled' if disabled else 'enabled'}",
            actor=actor,
        )

    async def _guard_last_admin(self, user: UserRow) -> None:
        if not user.is_admin:
            return
        admins = [u for u in await self._store.list_users() if u.is_admin and u.disabled_us is None]
        if len(admins) <= 1:
            raise InvalidRequest("the last admin stays an admin", code="last_admin")

    # -- login and sessions -----------------------------------------------------------------

    async def login(
        self, username: str, password: str, ip: str | None, user_agent: str | None
    ) -> tuple[str, SessionView]:
        """Check the password; open a session. Returns the cookie value (shown once) and the
        session. Raises Unauthenticated (one message for every failure) or TooManyAttempts."""
        now = self._clock.now().timestamp()
        keys = (f"ip:{ip or '?'}", f"user:{username.lower()[:64]}")
        wait = self.limiter.retry_after(keys, now)
        if wait > 0:
            raise TooManyAttempts("too many failed logins; try again later", int(wait) + 1)
        user = await self._store.find_user(username) if is_ident(username) else None
        ok = await self._verify(user, password)
        if user is None or not ok or user.disabled_us is not None:
            self.limiter.failed(keys, now)
            await self._activity.record(
                "login_failed",
                f"failed login for {username[:64]!r}",
                actor=username[:64],
                data={"ip": ip},
            )
            raise Unauthenticated("wrong user name or password", code="login_failed")
        self.limiter.succeeded(keys)
        now_us = self._now_us()
        if self._hasher.check_needs_rehash(user.password_hash):
            digest = await asyncio.to_thread(self._hasher.hash, password)
            user = await self._store.update_user(user.id, password_hash=digest)
        user = await self._store.update_user(user.id, last_login_us=now_us)
        secret = "bws_" + secrets.token_urlsafe(32)
        session = await self._store.create_session(
            hash_token(secret),
            user.id,
            secrets.token_urlsafe(32),
            now_us,
            self._expiry(now_us, now_us),
            ip,
            (user_agent or "")[:256] or None,
        )
        await self._activity.record(
            "login", f"{user.username} logged in", actor=user.username, data={"ip": ip}
        )
        return secret, SessionView(session, user)

    async def _verify(self, user: UserRow | None, password: str) -> bool:
        if len(password) > MAX_PASSWORD:
            return False
        if user is None:  # as slow as a real check, so timing does not tell which names exist
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_hex(8))
            digest = self._dummy_hash
        else:
            digest = user.password_hash
        try:
            return await asyncio.to_thread(self._hasher.verify, digest, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def session(self, secret: str | None) -> SessionView | None:
        """The live session of a cookie value, or None; slides its idle expiry (written at most
        once a minute)."""
        if not secret or len(secret) > 128:
            return None
        found = await self._store.find_session(hash_token(secret))
        if found is None:
            return None
        session, user = found
        now_us = self._now_us()
        if session.expires_us <= now_us or user.disabled_us is not None:
            await self._store.delete_session(session.id)
            return None
        if now_us - session.seen_us >= 60_000_000:
            expires = self._expiry(session.created_us, now_us)
            await self._store.touch_session(session.id, now_us, expires)
        return SessionView(session, user)

    async def logout(self, view: SessionView) -> None:
        await self._store.delete_session(view.session.id)
        await self._activity.record(
            "logout", f"{view.user.username} logged out", actor=view.user.username
        )

    async def prune_sessions(self) -> int:
        return await self._store.prune_sessions(self._now_us())

    def _expiry(self, created_us: int, now_us: int) -> int:
        idle = now_us + int(self.config.session_idle_s * 1e6)
        return min(idle, created_us + int(self.config.session_max_s * 1e6))

    # -- personal API tokens ----------------------------------------------------------------

    async def issue_token(self, user: UserRow, name: str, scope: Scope) -> IssuedToken:
        """A personal API token; a viewer may hold read and metrics tokens only."""
        if scope not in ROLE_SCOPES[user.role]:
            raise Forbidden(f"a {user.role.value} may not hold a {scope.value} token")
        name = name.strip()[:100] or scope.value
        issued = await self._credentials.issue_user_token(name, frozenset({scope}), user.id)
        await self._activity.record(
            "token_issued",
            f"{user.username} made the {scope.value} token {issued.row.id} ({name})",
            actor=user.username,
            data={"token_id": issued.row.id, "scope": scope},
        )
        return issued

    async def tokens(self, user: UserRow) -> list[TokenRow]:
        return [t for t in await self._credentials.list_tokens() if t.user_id == user.id]

    async def revoke_token(self, user: UserRow, token_id: int) -> TokenRow:
        """Revoke one of the user's own tokens (an admin may revoke any user token)."""
        mine = {t.id: t for t in await self._credentials.list_tokens()}
        token = mine.get(token_id)
        if token is None or token.kind != "user":
            raise NotFound(f"no token {token_id}", code="unknown_token")
        if token.user_id != user.id and not user.is_admin:
            raise Forbidden("that token is not yours")
        row = await self._credentials.revoke(token_id)
        await self._activity.record(
            "token_revoked",
            f"{user.username} revoked token {token_id} ({token.name})",
            actor=user.username,
            data={"token_id": token_id},
        )
        return row

    def _now_us(self) -> int:
        return to_us(self._clock.now())


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters", code="weak_password"
        )


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (CSRF)."""
    return hmac.compare_digest(a.encode(), b.encode())
