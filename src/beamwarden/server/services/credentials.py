"""Room: server/services. Credentials: node tokens, enrolment keys, user API tokens.

Tokens are 256 random bits, shown once, stored only as their SHA-256 hash (an indexed lookup: a
slow password hash is for passwords, not for a token checked on every request). A checked token
is cached for ``cache_s`` seconds, so a revocation takes effect within that time on every replica.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from beamwarden.protocol import Scope
from beamwarden.server.errors import Forbidden, InvalidRequest, Unauthenticated
from beamwarden.server.records import Principal, TokenRow, to_us
from beamwarden.server.services.clock import Clock
from beamwarden.server.services.ports import TokenStore

#: prefix of each kind of token, so a leaked one is recognisable (and scannable)
PREFIX = {"node": "bwn_", "enrol": "bwe_", "user": "bwu_"}
USER_SCOPES = frozenset({Scope.READ, Scope.METRICS, Scope.ADMIN})


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_token(kind: str) -> str:
    return PREFIX[kind] + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just created: ``secret`` is shown once and never stored."""

    row: TokenRow
    secret: str


class Credentials:
    def __init__(
        self, store: TokenStore, clock: Clock, cache_s: float = 5.0, cache_max: int = 10_000
    ):
        self._store = store
        self._clock = clock
        self._cache_s = cache_s
        self._cache_max = cache_max
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}

    async def authenticate(self, token: str | None) -> Principal:
        """The principal of a presented token. Raises Unauthenticated."""
        if not token:
            raise Unauthenticated("a credential is required: Authorization: Bearer <token>")
        if len(token) > 512:
            raise Unauthenticated("unknown or revoked token")
        digest = hash_token(token)
        now = self._clock.now().timestamp()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            principal = hit[1]
        else:
            row = await self._store.find_token(digest)
            principal = None if row is None or row.revoked_us is not None else _principal(row)
            if len(self._cache) >= self._cache_max:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_s, principal)
        if principal is None:
            raise Unauthenticated("unknown or revoked token")
        return principal

    def forget(self) -> None:
        """Drop cached verdicts (after a revocation through this process)."""
        self._cache.clear()

    async def issue_node_token(self, node_id: str, relay: bool = False) -> IssuedToken:
        scopes = frozenset({Scope.NODE, Scope.RELAY} if relay else {Scope.NODE})
        return await self._issue("node", node_id, scopes, node_id)

    async def issue_enrolment_key(self, name: str) -> IssuedToken:
        return await self._issue("enrol", name, frozenset({Scope.ENROL}), None)

    async def issue_user_token(
        self, name: str, scopes: frozenset[Scope], user_id: int | None = None
    ) -> IssuedToken:
        """A user API token; ``user_id`` makes it a dashboard user's personal token."""
        if not scopes or not scopes <= USER_SCOPES:
            raise InvalidRequest(
                "a user token has the scopes read, metrics or admin", code="invalid_scope"
            )
        return await self._issue("user", name, scopes, None, user_id)

    async def issue(self, scope: Scope, name: str) -> IssuedToken:
        """``beamwarden tokens add --scope S``: a user token, or an enrolment key for ``enrol``."""
        if scope is Scope.ENROL:
            return await self.issue_enrolment_key(name)
        if scope in (Scope.NODE, Scope.RELAY):
            raise InvalidRequest(
                "node tokens are made with `beamwarden nodes add NODE`", code="invalid_scope"
            )
        return await self.issue_user_token(name, frozenset({scope}))

    async def _issue(
        self,
        kind: str,
        name: str,
        scopes: frozenset[Scope],
        node_id: str | None,
        user_id: int | None = None,
    ) -> IssuedToken:
        secret = new_token(kind)
        row = await self._store.create_token(
            hash_token(secret), kind, name, scopes, node_id, to_us(self._clock.now()), user_id
        )
        return IssuedToken(row, secret)

    async def list_tokens(self) -> list[TokenRow]:
        return await self._store.list_tokens()

    async def revoke(self, token_id: int) -> TokenRow:
        row = await self._store.revoke_token(token_id, to_us(self._clock.now()))
        self.forget()
        return row

    async def revoke_node_tokens(self, node_id: str) -> int:
        count = await self._store.revoke_node_tokens(node_id, to_us(self._clock.now()))
        self.forget()
        return count


def _principal(row: TokenRow) -> Principal:
    return Principal(row.id, row.kind, row.name, row.scopes, row.node_id)


def require(principal: Principal, scope: Scope) -> None:
    """Raise Forbidden unless the principal has ``scope`` (admin has every user scope)."""
    if not principal.has(scope):
        raise Forbidden(f"this credential lacks the {scope.value!r} scope")


def require_reader(principal: Principal) -> str | None:
    """May read; returns the node the credential is confined to (a node token reads its own data)."""
    if principal.kind == "node":
        return principal.node_id
    if principal.has(Scope.READ):
        return None
    raise Forbidden("this credential may not read data; it needs the 'read' scope")
