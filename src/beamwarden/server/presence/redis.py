"""Room: server/presence (adapter). Leases and presence in Redis, shared by every server replica.

Satisfies ``Presence`` of :mod:`beamwarden.server.services.leases` structurally (adapters never
import services); the rules are those of :mod:`beamwarden.fleet.leases`, written once more in Lua
so that each operation is one atomic script on the Redis server. The contract suite
(``tests/contract/test_presence.py``) holds this adapter and the in-process one to the same answers.

**Time.** Every call is given ``now`` (the server's clock). Deadlines are absolute and stored in
the data (``expires`` in each lease hash, the score of a sorted set), and the scripts compare them
with the ``now`` they are given; Redis's own key expiry (``PEXPIRE``) is only garbage collection,
an hour after the deadline, for leases nobody sweeps any more. So tests move a fake clock instead
of sleeping 45 s, and replicas agree as well as their clocks do (NTP: milliseconds, against a TTL of
seconds). Times are epoch microseconds, passed as decimal strings and printed with ``%.0f`` in Lua
(exact below 2⁵³ µs, the year 2255), never through Lua's ``tostring``, which rounds.

**Keys** (all under one hash tag ``{prefix}``, so a cluster keeps them in one slot)::

    {p}:lease:<name>        hash: holder hostname ip epoch acquired renewed ttl expires
    {p}:epoch:<name>        the highest epoch granted (INCR); never expires, so epochs only grow
    {p}:lease-deadlines     sorted set: name → expires (what the sweep walks)
    {p}:seen                sorted set: key → present until
    {p}:seen-at             hash: key → last seen

The sweep script reaches the lease hashes named in the deadline set, keys it cannot declare
beforehand: fine on one Redis, and on a cluster they share the ``{prefix}`` slot.

Errors reaching Redis become :class:`~beamwarden.server.errors.StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis
import redis.exceptions

from beamwarden.fleet.leases import Grant, Holder, Lease, LeaseRefusal, check_ttl, refusal
from beamwarden.server.errors import StoreUnavailable
from beamwarden.server.records import from_us, to_us

#: a lease hash is garbage-collected by Redis this long after its deadline (if nobody swept it)
GC_GRACE = timedelta(hours=1)

#: the fields of a lease hash, in the order the scripts return them (a short reply parses fast)
FIELDS = ("holder", "hostname", "ip", "epoch", "acquired", "renewed", "ttl", "expires")

# ``fields(flat HGETALL reply)`` → a Lua table; ``ordered(table)`` → its values in FIELDS order.
_FIELDS = (
    "local FIELDS = {"
    + ", ".join(f"'{f}'" for f in FIELDS)
    + """}
local function fields(flat)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end
local function ordered(h)
  local out = {}
  for i, f in ipairs(FIELDS) do out[i] = h[f] end
  return out
end
local function stored(key)
  return redis.call('HMGET', key, unpack(FIELDS))
end
"""
)

# KEYS: lease, epoch, deadlines. ARGV: name, holder, hostname, ip, ttl_us, now_us, gc_grace_ms.
_ACQUIRE = (
    _FIELDS
    + """
local now = tonumber(ARGV[6])
local ttl = tonumber(ARGV[5])
local expires = string.format('%.0f', now + ttl)
local gc_ms = string.format('%.0f', math.floor(ttl / 1000) + tonumber(ARGV[7]))
local cur = redis.call('HGETALL', KEYS[1])
local old_epoch = 0
local replaced = {}
if #cur > 0 then
  local h = fields(cur)
  if now < tonumber(h['expires']) then
    if h['holder'] ~= ARGV[2] then return {'refused', ordered(h)} end
    redis.call('HSET', KEYS[1], 'hostname', ARGV[3], 'ip', ARGV[4], 'renewed', ARGV[6],
               'ttl', ARGV[5], 'expires', expires)
    redis.call('ZADD', KEYS[3], expires, ARGV[1])
    redis.call('PEXPIRE', KEYS[1], gc_ms)
    return {'renewed', stored(KEYS[1])}
  end
  old_epoch = tonumber(h['epoch'])
  replaced = ordered(h)
end
local epoch = redis.call('INCR', KEYS[2])
if epoch <= old_epoch then
  epoch = old_epoch + 1
  redis.call('SET', KEYS[2], epoch)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'holder', ARGV[2], 'hostname', ARGV[3], 'ip', ARGV[4],
           'epoch', epoch, 'acquired', ARGV[6], 'renewed', ARGV[6], 'ttl', ARGV[5],
           'expires', expires)
redis.call('ZADD', KEYS[3], expires, ARGV[1])
redis.call('PEXPIRE', KEYS[1], gc_ms)
return {'granted', stored(KEYS[1]), replaced}
"""
)

# KEYS: lease, deadlines. ARGV: name, holder, now_us, ttl_us ('' keeps the lease's), gc_grace_ms.
_RENEW = (
    _FIELDS
    + """
local cur = redis.call('HGETALL', KEYS[1])
if #cur == 0 then return false end
local h = fields(cur)
local now = tonumber(ARGV[3])
if h['holder'] ~= ARGV[2] or now >= tonumber(h['expires']) then return false end
local ttl = ARGV[4]
if ttl == '' then ttl = h['ttl'] end
local expires = string.format('%.0f', now + tonumber(ttl))
redis.call('HSET', KEYS[1], 'renewed', ARGV[3], 'ttl', ttl, 'expires', expires)
redis.call('ZADD', KEYS[2], expires, ARGV[1])
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.floor(tonumber(ttl) / 1000)
                                             + tonumber(ARGV[5])))
return stored(KEYS[1])
"""
)

# KEYS: lease, deadlines. ARGV: name, holder, now_us.
_RELEASE = (
    _FIELDS
    + """
local cur = redis.call('HGETALL', KEYS[1])
if #cur == 0 then return false end
local h = fields(cur)
if h['holder'] ~= ARGV[2] or tonumber(ARGV[3]) >= tonumber(h['expires']) then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return ordered(h)
"""
)

# KEYS: deadlines. ARGV: lease key prefix, now_us, limit. Returns name, fields, name, fields, …
_EXPIRE = (
    _FIELDS
    + """
local now = tonumber(ARGV[2])
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local out = {}
for _, name in ipairs(names) do
  local key = ARGV[1] .. name
  local cur = redis.call('HGETALL', key)
  if #cur == 0 then
    redis.call('ZREM', KEYS[1], name)
  else
    local h = fields(cur)
    if now >= tonumber(h['expires']) then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], name)
      table.insert(out, name)
      table.insert(out, ordered(h))
    end
  end
end
return out
"""
)

# KEYS: seen, seen-at. ARGV: now_us. Returns key, last seen, key, last seen, …
_PRESENT = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local out = {}
for _, key in ipairs(keys) do
  table.insert(out, key)
  table.insert(out, redis.call('HGET', KEYS[2], key))
end
return out
"""

# KEYS: seen, seen-at. ARGV: now_us, limit.
_FORGET_ABSENT = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, key in ipairs(keys) do
  redis.call('ZREM', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
end
return keys
"""


def _us(value: datetime | timedelta) -> str:
    if isinstance(value, timedelta):
        return str(value // timedelta(microseconds=1))
    return str(to_us(value))


def _lease(name: str, values: Sequence[Any]) -> Lease:
    """A lease from its hash's values in :data:`FIELDS` order."""
    holder, hostname, ip, epoch, acquired, renewed, ttl = values[:7]
    return Lease(
        name=name,
        holder=Holder(holder, hostname or None, ip or None),
        epoch=int(epoch),
        acquired_at=from_us(int(acquired)),
        renewed_at=from_us(int(renewed)),
        ttl=timedelta(microseconds=int(ttl)),
    )


@contextlib.asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise StoreUnavailable(f"presence store (Redis) unavailable: {exc}") from exc


class RedisPresence:
    """Leases and presence on one Redis database, under the key prefix ``prefix``."""

    def __init__(self, client: aioredis.Redis, prefix: str = "beamwarden", *, owns: bool = False):
        """``client`` must decode responses (``decode_responses=True``); ``owns``: close it."""
        self._r = client
        self._owns = owns
        base = "{" + prefix + "}:"
        self._lease_prefix = base + "lease:"
        self._epoch_prefix = base + "epoch:"
        self._deadlines = base + "lease-deadlines"
        self._seen = base + "seen"
        self._seen_at = base + "seen-at"
        self._gc_ms = str(GC_GRACE // timedelta(milliseconds=1))
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._expire = client.register_script(_EXPIRE)
        self._present = client.register_script(_PRESENT)
        self._forget = client.register_script(_FORGET_ABSENT)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "beamwarden", *, timeout_s: float = 5.0
    ) -> RedisPresence:
        """A presence store on ``url`` (``redis://host:6379/0``) with its own connection pool."""
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        return cls(client, prefix, owns=True)

    async def ping(self) -> None:
        async with _reachable():
            await self._r.ping()

    async def close(self) -> None:
        if self._owns:
            await self._r.aclose()

    # --- leases ------------------------------------------------------------------------------

    async def try_acquire(
        self, name: str, holder: Holder, ttl: timedelta, now: datetime
    ) -> Grant | LeaseRefusal:
        check_ttl(ttl)
        keys = [self._lease_prefix + name, self._epoch_prefix + name, self._deadlines]
        args = [name, holder.holder_id, holder.hostname or "", holder.ip or ""]
        async with _reachable():
            reply = await self._acquire(keys, [*args, _us(ttl), _us(now), self._gc_ms])
        outcome, current = reply[0], _lease(name, reply[1])
        if outcome == "refused":
            return refusal(current, now)
        if outcome == "renewed":
            return Grant(current, new=False)
        replaced = _lease(name, reply[2]) if reply[2] else None
        return Grant(current, new=True, replaced=replaced)

    async def renew(
        self, name: str, holder_id: str, now: datetime, ttl: timedelta | None = None
    ) -> Lease | None:
        if ttl is not None:
            check_ttl(ttl)
        keys = [self._lease_prefix + name, self._deadlines]
        args = [name, holder_id, _us(now), "" if ttl is None else _us(ttl), self._gc_ms]
        async with _reachable():
            reply = await self._renew(keys, args)
        return _lease(name, reply) if reply else None

    async def release(self, name: str, holder_id: str, now: datetime) -> Lease | None:
        keys = [self._lease_prefix + name, self._deadlines]
        async with _reachable():
            reply = await self._release(keys, [name, holder_id, _us(now)])
        return _lease(name, reply) if reply else None

    async def get(self, name: str, now: datetime) -> Lease | None:
        async with _reachable():
            values = await self._r.hmget(self._lease_prefix + name, list(FIELDS))
        if values[0] is None:
            return None
        lease = _lease(name, values)
        return lease if lease.held(now) else None

    async def check_epoch(self, name: str, epoch: int, now: datetime) -> bool:
        async with _reachable():
            stored, expires = await self._r.hmget(self._lease_prefix + name, ["epoch", "expires"])
        if stored is None or expires is None:
            return False
        return int(stored) == epoch and to_us(now) < int(expires)

    async def list_leases(self, now: datetime) -> list[Lease]:
        async with _reachable():
            names = cast(
                list[str], await self._r.zrangebyscore(self._deadlines, f"({_us(now)}", "+inf")
            )
            async with self._r.pipeline(transaction=True) as pipe:
                for name in names:
                    pipe.hmget(self._lease_prefix + name, list(FIELDS))
                rows = await pipe.execute()
        found = [_lease(name, v) for name, v in zip(names, rows, strict=True) if v[0] is not None]
        return sorted((lease for lease in found if lease.held(now)), key=lambda x: x.name)

    async def expire(self, now: datetime, limit: int = 1000) -> list[Lease]:
        async with _reachable():
            reply = await self._expire([self._deadlines], [self._lease_prefix, _us(now), limit])
        return [_lease(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]

    # --- presence ----------------------------------------------------------------------------

    async def seen(self, key: str, now: datetime, ttl: timedelta) -> None:
        async with _reachable(), self._r.pipeline(transaction=True) as pipe:
            pipe.zadd(self._seen, {key: to_us(now + ttl)})
            pipe.hset(self._seen_at, key, _us(now))
            await pipe.execute()

    async def last_seen(self, key: str, now: datetime) -> datetime | None:
        async with _reachable(), self._r.pipeline(transaction=True) as pipe:
            pipe.zscore(self._seen, key)
            pipe.hget(self._seen_at, key)
            until, at = await pipe.execute()
        if until is None or at is None or to_us(now) >= until:
            return None
        return from_us(int(at))

    async def present(self, now: datetime) -> dict[str, datetime]:
        async with _reachable():
            reply = await self._present([self._seen, self._seen_at], [_us(now)])
        return {
            reply[i]: from_us(int(reply[i + 1]))
            for i in sorted(range(0, len(reply), 2), key=lambda i: str(reply[i]))
        }

    async def forget_absent(self, now: datetime, limit: int = 1000) -> list[str]:
        async with _reachable():
            gone = await self._forget([self._seen, self._seen_at], [_us(now), limit])
        return sorted(str(key) for key in gone)
