"""The Limiter shared by every node through Redis.

Keys, all under ``tessera:`` and each with a TTL so Redis never fills up:

    tessera:rate:source:<address>   GCRA theoretical arrival time, seconds
    tessera:rate:client:<client id> (TTL: until the key is back to a full burst)
    tessera:fail:<client id>        failed authentications (TTL: the window)
    tessera:lock:<client id>        end of the lock, seconds (TTL: the lock)

The GCRA step and the failure count run as Lua scripts (EVALSHA), so each is
one atomic round trip however many nodes share the key. Times come from the
node (``now``), as everywhere else in Tessera: nodes need synchronised clocks
already, for the ``iat`` and ``exp`` of the tokens they issue.

When Redis fails or is slow, the call is answered by the node's own
LocalLimiter instead. Rate limiting protects the token endpoint; it must
never be the reason the endpoint fails. For the length of an outage the
limits are per node (each node allows the full rate), which errs towards
serving clients. After a failure, Redis is left alone for a second, so an
unreachable Redis costs one timeout a second rather than one per call; and
the outage is logged once a minute, not once a request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tessera.config import Settings
from tessera.core.audit import Audit
from tessera.core.client_assertion import ClientAssertions
from tessera.core.limits import (
    Admission,
    Guard,
    Limiter,
    Lockout,
    RateCheck,
    RateLimits,
)
from tessera.core.users import LoginThrottle
from tessera.server.limits_local import LocalLimiter

logger = logging.getLogger("tessera.server")

TIMEOUT = 0.2
RETRY_AFTER_FAILURE = 1.0
WARNING_INTERVAL = 60.0

T = TypeVar("T")

# KEYS[1]: the key's TAT. ARGV: now, emission interval (1/rate), burst.
# Returns the wait in seconds, "0" when the request conforms. The same
# arithmetic as tessera.core.limits.gcra; %.17g keeps every bit of a double.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local allowed_at = tat - (burst - 1) * interval
if now < allowed_at then
  return string.format('%.17g', allowed_at - now)
end
tat = tat + interval
local ttl = math.max(1, math.ceil((tat - now) * 1000))
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', ttl)
return '0'
"""

# The token endpoint's admission in one round trip. KEYS: a TAT key per
# rate check, then the id's lock and failure keys. ARGV: now, then an
# (interval, burst) pair per rate check. Returns {wait} when a check refuses
# (later checks uncounted), else {"0", lock end or "", 1 if failures}.
_ADMIT = """
local now = tonumber(ARGV[1])
local checks = #KEYS - 2
for i = 1, checks do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then
    tat = now
  end
  local allowed_at = tat - (burst - 1) * interval
  if now < allowed_at then
    return {string.format('%.17g', allowed_at - now)}
  end
  tat = tat + interval
  local ttl = math.max(1, math.ceil((tat - now) * 1000))
  redis.call('SET', KEYS[i], string.format('%.17g', tat), 'PX', ttl)
end
local lock = redis.call('GET', KEYS[checks + 1]) or ''
return {'0', lock, redis.call('EXISTS', KEYS[checks + 2])}
"""

# KEYS[1]: the id's failure count. ARGV[1]: the window, ms. The window opens
# at the first failure; any key left without a TTL gets one here.
_COUNT_FAILURE = """
local failures = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return failures
"""


class RedisLimiter:
    def __init__(
        self,
        url: str,
        fallback: LocalLimiter,
        *,
        prefix: str = "tessera:",
        timeout: float = TIMEOUT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # No retries: a retry would only stretch the wait that the fallback
        # is there to avoid.
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            max_connections=64,
        )
        self._fallback = fallback
        self._prefix = prefix
        self._monotonic = monotonic
        self._gcra = self._redis.register_script(_GCRA)
        self._count_failure = self._redis.register_script(_COUNT_FAILURE)
        self._admit = self._redis.register_script(_ADMIT)
        self._skip_until = 0.0
        self._next_warning = 0.0

    async def hit(self, key: str, rate: float, burst: int, now: float) -> float:
        async def remote() -> float:
            keys = [self._prefix + "rate:" + key]
            wait = await self._gcra(keys=keys, args=[repr(now), repr(1 / rate), burst])
            return float(wait)

        return await self._either(
            remote, lambda: self._fallback.hit(key, rate, burst, now)
        )

    async def record_failure(self, client_id: str, now: float, window: float) -> int:
        async def remote() -> int:
            keys = [self._prefix + "fail:" + client_id]
            return int(await self._count_failure(keys=keys, args=[_ms(window)]))

        return await self._either(
            remote, lambda: self._fallback.record_failure(client_id, now, window)
        )

    async def locked_until(self, client_id: str, now: float) -> float | None:
        async def remote() -> float | None:
            value = await self._redis.get(self._prefix + "lock:" + client_id)
            until = None if value is None else float(value)
            return until if until is not None and until > now else None

        return await self._either(
            remote, lambda: self._fallback.locked_until(client_id, now)
        )

    async def lock(self, client_id: str, until: float, now: float) -> None:
        async def remote() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                key = self._prefix + "lock:" + client_id
                pipe.set(key, repr(until), px=_ms(until - now))
                pipe.delete(self._prefix + "fail:" + client_id)
                await pipe.execute()

        await self._either(remote, lambda: self._fallback.lock(client_id, until, now))

    async def clear_failures(self, client_id: str) -> None:
        async def remote() -> None:
            await self._redis.delete(self._prefix + "fail:" + client_id)

        await self._either(remote, lambda: self._fallback.clear_failures(client_id))

    async def admit(
        self, checks: tuple[RateCheck, ...], client_id: str, now: float
    ) -> Admission:
        async def remote() -> Admission:
            keys = [self._prefix + "rate:" + check.key for check in checks]
            keys += [self._prefix + "lock:" + client_id]
            keys += [self._prefix + "fail:" + client_id]
            args: list[object] = [repr(now)]
            for check in checks:
                args += [repr(1 / check.rate), check.burst]
            answer = await self._admit(keys=keys, args=args)
            wait = float(answer[0])
            if wait:
                return Admission(wait, None, False)
            lock = float(answer[1]) if answer[1] else None
            locked_until = lock if lock is not None and lock > now else None
            return Admission(0.0, locked_until, bool(int(answer[2])))

        return await self._either(
            remote, lambda: self._fallback.admit(checks, client_id, now)
        )

    async def close(self) -> None:
        await self._redis.aclose()

    async def _either(
        self,
        remote: Callable[[], Awaitable[T]],
        local: Callable[[], Awaitable[T]],
    ) -> T:
        """``remote()``, or ``local()`` while Redis is failing."""
        if self._skip_until and self._monotonic() < self._skip_until:
            return await local()
        try:
            result = await remote()
        except (RedisError, OSError) as error:
            # OSError covers the builtin TimeoutError of a slow socket.
            self._failed(error)
            return await local()
        self._skip_until = 0.0
        return result

    def _failed(self, error: Exception) -> None:
        now = self._monotonic()
        self._skip_until = now + RETRY_AFTER_FAILURE
        if now >= self._next_warning:
            self._next_warning = now + WARNING_INTERVAL
            logger.warning(
                "Redis unavailable (%s); rate limits and lockouts count per node",
                type(error).__name__,
            )


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def open_limiter(settings: Settings) -> Limiter:
    """Counts in Redis when ``redis_url`` is set, else in this process."""
    local = LocalLimiter()
    return RedisLimiter(settings.redis_url, local) if settings.redis_url else local


def open_guard(
    settings: Settings, audit: Audit, *, assertions: ClientAssertions | None = None
) -> Guard:
    """The node's limits, counted in Redis when ``redis_url`` is set; the
    guard authenticates private_key_jwt clients with ``assertions``."""
    limiter = open_limiter(settings)
    rates = RateLimits(
        per_client=settings.rate_limit_per_client,
        per_client_burst=settings.rate_limit_per_client_burst,
        per_source=settings.rate_limit_per_source,
        per_source_burst=settings.rate_limit_per_source_burst,
    )
    lockout = Lockout(
        window=settings.auth_failure_window,
        slowdown_after=settings.auth_slowdown_after,
        lockout_after=settings.auth_lockout_after,
        lockout_seconds=settings.auth_lockout_seconds,
    )
    return Guard(limiter, rates, lockout, audit, assertions=assertions)


def open_login_throttle(settings: Settings, audit: Audit) -> LoginThrottle:
    """Failed logins, counted like the guard's (its own limiter; close it
    with ``close``) under the ``login_*`` settings."""
    lockout = Lockout(
        window=settings.login_failure_window,
        slowdown_after=settings.login_slowdown_after,
        lockout_after=settings.login_lockout_after,
        lockout_seconds=settings.login_lockout_seconds,
    )
    return LoginThrottle(open_limiter(settings), lockout, audit)
