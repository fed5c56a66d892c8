"""Room: server/store (adapter). Dashboard users and sessions in SQL (SQLite and PostgreSQL alike).

Implements :class:`beamwarden.server.services.users.UserStore`. Sessions are found by the SHA-256
hash of the cookie value; expired sessions are deleted when met and by :meth:`prune_sessions`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from beamwarden.server.errors import AlreadyExists, NotFound
from beamwarden.server.user_records import Role, SessionRow, UserRow

from .adapter import EngineAdapter
from .failures import is_unique_violation
from .schema import sessions, users

__all__ = ["UserSqlStore"]


class UserSqlStore(EngineAdapter):
    # -- users ------------------------------------------------------------------------------

    async def create_user(
        self, username: str, password_hash: str, role: Role, now_us: int
    ) -> UserRow:
        """Raises AlreadyExists for a taken name."""
        stmt = (
            users.insert()
            .values(
                username=username, password_hash=password_hash, role=role.value, created_us=now_us
            )
            .returning(*users.c)
        )
        try:
            async with self._write() as conn:
                row = (await conn.execute(stmt)).one()
        except Exception as exc:
            if is_unique_violation(exc) or is_unique_violation(exc.__cause__ or exc):
                raise AlreadyExists(f"a user {username!r} exists", code="user_exists") from None
            raise
        return _user(row)

    async def get_user(self, user_id: int) -> UserRow | None:
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).one_or_none()
        return None if row is None else _user(row)

    async def find_user(self, username: str) -> UserRow | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(users).where(users.c.username == username))
            ).one_or_none()
        return None if row is None else _user(row)

    async def list_users(self) -> list[UserRow]:
        async with self._read() as conn:
            return [_user(r) for r in await conn.execute(select(users).order_by(users.c.username))]

    async def update_user(self, user_id: int, **values: Any) -> UserRow:
        """Set ``password_hash``, ``role`` (a :class:`Role`), ``last_login_us`` or
        ``disabled_us``. Raises NotFound."""
        if isinstance(values.get("role"), Role):
            values["role"] = values["role"].value
        async with self._write() as conn:
            row = (
                await conn.execute(
                    update(users).where(users.c.id == user_id).values(**values).returning(*users.c)
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"no user {user_id}", code="unknown_user")
        return _user(row)

    # -- sessions ---------------------------------------------------------------------------

    async def create_session(
        self,
        token_hash: bytes,
        user_id: int,
        csrf_token: str,
        now_us: int,
        expires_us: int,
        ip_address: str | None,
        user_agent: str | None,
    ) -> SessionRow:
        stmt = (
            sessions.insert()
            .values(
                token_hash=token_hash,
                user_id=user_id,
                csrf_token=csrf_token,
                created_us=now_us,
                seen_us=now_us,
                expires_us=expires_us,
                ip_address=ip_address,
                user_agent=user_agent,
            )
            .returning(*sessions.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).one()
        return _session(row)

    async def find_session(self, token_hash: bytes) -> tuple[SessionRow, UserRow] | None:
        """The session with this hash and its user, whatever their state."""
        stmt = (
            select(sessions, *(c.label(f"u_{c.name}") for c in users.c))
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.token_hash == token_hash)
        )
        async with self._read() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        m = row._mapping
        user = UserRow(
            id=m["u_id"],
            username=m["u_username"],
            password_hash=m["u_password_hash"],
            role=Role(m["u_role"]),
            created_us=m["u_created_us"],
            last_login_us=m["u_last_login_us"],
            disabled_us=m["u_disabled_us"],
        )
        return _session(row), user

    async def touch_session(self, session_id: int, seen_us: int, expires_us: int) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(seen_us=seen_us, expires_us=expires_us)
            )

    async def delete_session(self, session_id: int) -> None:
        async with self._write() as conn:
            await conn.execute(delete(sessions).where(sessions.c.id == session_id))

    async def delete_user_sessions(self, user_id: int) -> int:
        async with self._write() as conn:
            result = await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        return int(result.rowcount or 0)

    async def prune_sessions(self, now_us: int) -> int:
        async with self._write() as conn:
            result = await conn.execute(delete(sessions).where(sessions.c.expires_us <= now_us))
        return int(result.rowcount or 0)

    async def count_users(self) -> int:
        async with self._read() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


def _user(row: Any) -> UserRow:
    return UserRow(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=Role(row.role),
        created_us=row.created_us,
        last_login_us=row.last_login_us,
        disabled_us=row.disabled_us,
    )


def _session(row: Any) -> SessionRow:
    return SessionRow(
        id=row.id,
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        created_us=row.created_us,
        seen_us=row.seen_us,
        expires_us=row.expires_us,
        ip_address=row.ip_address,
        user_agent=row.user_agent,
    )
