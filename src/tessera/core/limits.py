"""Rate limits and failed-authentication lockout, as policy over a Limiter.

The token endpoint runs, before anything costly:

    read_credentials → admit: the source's rate, the client's rate and its
      lockout, in one step (one round trip to Redis)
    → authenticate: check the secret or the assertion → count the failure
      (slow down, then lock out) or clear the count, if there is one

A request too malformed to name its client is counted against its source
alone (``check_source_rate``).

Introspection and revocation share the ``authenticate`` step, so a guess
made at any of the three endpoints counts against the same client id.

Every presented client id is counted and locked the same way whether or not
it exists: a 429 must tell an attacker nothing a 401 would not.

Rate limits use GCRA, the generic cell rate algorithm: one number per key,
its theoretical arrival time (TAT). Each conforming request pushes the TAT
one emission interval (1/rate) later; a request is refused while the TAT
is more than ``burst`` intervals ahead of now, and the wait is how far.
A TAT in the past means a full burst is available, so an expired key can be
forgotten without changing any answer.

Where the counts live (this process, or Redis shared by every node) is the
Limiter's business; this module knows neither, and takes time as an input.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from tessera.core.audit import Audit
from tessera.core.client_assertion import ClientAssertions
from tessera.core.client_auth import Credentials, authenticate, loggable_client_id
from tessera.core.clients import Client, ClientDirectory
from tessera.core.errors import InvalidClient, TooManyRequests

# Slowdown after the threshold: 0.25 s, then doubling, never above 2 s. Long
# enough to make guessing in sequence slow, short enough that a client with
# a mistyped secret still gets its answer before its HTTP timeout.
FIRST_DELAY = 0.25
MAX_DELAY = 2.0

# Longer presented ids are hashed before they become keys: an id can be as
# long as the request body, and each one is held in memory or in Redis.
_MAX_KEY_ID = 128


def gcra(tat: float | None, now: float, rate: float, burst: int) -> tuple[float, float]:
    """One request against a key whose theoretical arrival time is ``tat``
    (None: never seen). Returns the key's TAT to store and the wait: 0.0
    when the request conforms, else the seconds until it would."""
    interval = 1.0 / rate
    if tat is None or tat < now:
        tat = now
    allowed_at = tat - (burst - 1) * interval
    if now < allowed_at:
        return tat, allowed_at - now
    return tat + interval, 0.0


class Limiter(Protocol):
    """Counters shared by the requests of one node, or of every node. Each
    method is atomic on its key. Times are seconds since the epoch."""

    async def hit(self, key: str, rate: float, burst: int, now: float) -> float:
        """Count one request against ``key`` by GCRA (see ``gcra``): 0.0 if it
        conforms, else the seconds to wait. A refused request is not counted."""
        ...

    async def record_failure(self, client_id: str, now: float, window: float) -> int:
        """Count one failed authentication; return the failures in the window,
        which opens at the first failure and lasts ``window`` seconds."""
        ...

    async def locked_until(self, client_id: str, now: float) -> float | None:
        """When the id's lock ends, or None if it is not locked at ``now``."""
        ...

    async def lock(self, client_id: str, until: float, now: float) -> None:
        """Lock the id until ``until``; its failure count starts again."""
        ...

    async def clear_failures(self, client_id: str) -> None:
        """Forget the id's failures: it has just authenticated."""
        ...

    async def admit(
        self, checks: tuple[RateCheck, ...], client_id: str, now: float
    ) -> Admission:
        """The token endpoint's questions in one step, atomic per key and one
        round trip where the counts live elsewhere: ``hit`` each check in
        order, stopping at the first refused, then the id's lock and whether
        it has failures on record."""
        ...

    async def close(self) -> None:
        """Release connections, if any."""
        ...


@dataclass(frozen=True, slots=True)
class RateCheck:
    key: str
    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Admission:
    # Seconds to wait when a rate check refused; 0.0 when all conformed.
    wait: float
    locked_until: float | None
    has_failures: bool


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Sustained requests per second and burst; a rate of 0 is no limit."""

    per_client: float
    per_client_burst: int
    per_source: float
    per_source_burst: int


@dataclass(frozen=True, slots=True)
class Lockout:
    """Failed authentications per client id, counted over ``window`` seconds:
    after ``slowdown_after`` each one is answered later, and the one that
    reaches ``lockout_after`` locks the id for ``lockout_seconds``."""

    window: float
    slowdown_after: int
    lockout_after: int
    lockout_seconds: float

    def delay(self, failures: int) -> float:
        beyond = failures - self.slowdown_after
        if beyond <= 0:
            return 0.0
        # The exponent is capped so a huge count cannot overflow the float.
        return min(MAX_DELAY, FIRST_DELAY * 2.0 ** min(beyond - 1, 16))


class Guard:
    """The limits of one node, applied with whatever Limiter holds the counts.

    ``sleep`` answers a slowed-down failure; tests pass one that only records.
    ``assertions`` verifies private_key_jwt, and is closed with the guard;
    without it, such requests fail.
    """

    def __init__(
        self,
        limiter: Limiter,
        rates: RateLimits,
        lockout: Lockout,
        audit: Audit,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        assertions: ClientAssertions | None = None,
    ) -> None:
        self._limiter = limiter
        self._assertions = assertions
        self._rates = rates
        self._lockout = lockout
        self._audit = audit
        self._sleep = sleep

    async def check_source_rate(self, source: str, now: float) -> None:
        rates = self._rates
        if rates.per_source:
            wait = await self._limiter.hit(
                "source:" + source, rates.per_source, rates.per_source_burst, now
            )
            if wait:
                raise TooManyRequests(wait, detail="rate limited")

    async def check_client_rate(self, client_id: str, now: float) -> None:
        rates = self._rates
        if rates.per_client:
            wait = await self._limiter.hit(
                "client:" + key_id(client_id),
                rates.per_client,
                rates.per_client_burst,
                now,
            )
            if wait:
                raise TooManyRequests(wait, detail="rate limited")

    async def admit(self, source: str, client_id: str, now: float) -> Admission:
        """Both rate limits and the lockout check at once: on Redis one round
        trip instead of three (measured: four round trips cut a node's
        issuance to a fifth). Raises TooManyRequests as the separate checks
        would; pass the result to ``authenticate``."""
        rates = self._rates
        checks = []
        if rates.per_source:
            checks.append(
                RateCheck("source:" + source, rates.per_source, rates.per_source_burst)
            )
        if rates.per_client:
            checks.append(
                RateCheck(
                    "client:" + key_id(client_id),
                    rates.per_client,
                    rates.per_client_burst,
                )
            )
        admission = await self._limiter.admit(tuple(checks), key_id(client_id), now)
        if admission.wait:
            raise TooManyRequests(admission.wait, detail="rate limited")
        if admission.locked_until is not None:
            raise TooManyRequests(admission.locked_until - now, detail="locked out")
        return admission

    async def authenticate(
        self,
        credentials: Credentials,
        clients: ClientDirectory,
        pepper: bytes,
        now: float,
        admitted: Admission | None = None,
    ) -> Client:
        """``client_auth.authenticate``, refused while the id is locked out,
        with its failures counted and its success clearing the count.
        ``admitted``, from ``admit``, has answered the lock question already
        and says whether there is a count to clear."""
        client_id = key_id(credentials.client_id)
        if admitted is None:
            await self.check_lockout(client_id, now)
        try:
            client = await authenticate(
                credentials, clients, pepper, now, self._assertions
            )
        except InvalidClient:
            await self.count_failure(client_id, now)
            raise
        if admitted is None or admitted.has_failures:
            await self._limiter.clear_failures(client_id)
        return client

    async def check_lockout(self, client_id: str, now: float) -> None:
        until = await self._limiter.locked_until(client_id, now)
        if until is not None:
            raise TooManyRequests(until - now, detail="locked out")

    async def count_failure(self, client_id: str, now: float) -> None:
        lockout = self._lockout
        failures = await self._limiter.record_failure(client_id, now, lockout.window)
        if failures >= lockout.lockout_after:
            # Lock before the slowdown sleep, so that requests racing this one
            # are refused at once rather than after it.
            until = now + lockout.lockout_seconds
            await self._limiter.lock(client_id, until, now)
            self._audit.emit(
                "client.locked_out",
                client_id=loggable_client_id(client_id),
                failures=failures,
                until=round(until, 3),
            )
        delay = lockout.delay(failures)
        if delay:
            await self._sleep(delay)

    async def close(self) -> None:
        await self._limiter.close()
        if self._assertions is not None:
            await self._assertions.close()


def key_id(client_id: str) -> str:
    """The presented id as counters know it: itself, or a digest if long."""
    if len(client_id) <= _MAX_KEY_ID:
        return client_id
    return "sha256:" + hashlib.sha256(client_id.encode("utf-8", "replace")).hexdigest()


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    """Which peers' X-Forwarded-For is believed, and the source it names.

    Each proxy appends the address it received the request from, so the
    right-most entry that is not one of our own proxies is the client; what
    lies to its left was written by the client and proves nothing.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or network"
                ) from None

    def source(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The address to count a request against. ``forwarded_for`` holds the
        X-Forwarded-For values, read only when ``peer`` is a trusted proxy."""
        if peer is None:
            # No peer address (a Unix socket): one shared source.
            return "unknown"
        if not self._networks or not self._trusts(_address(peer)):
            return source_key(peer)
        hops = ",".join(forwarded_for).split(",")
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                # A proxy of ours never writes this: believe only the peer.
                return source_key(peer)
            if not self._trusts(address):
                return source_key(str(address))
        # Every hop is one of our proxies: the request began inside.
        return source_key(peer)

    def _trusts(self, address: Address | None) -> bool:
        return address is not None and any(
            address in network for network in self._networks
        )


def source_key(address: str) -> str:
    """IPv6 sources are counted per /64: one host is usually handed a whole
    /64, and counting each of its addresses apart would multiply its limit
    by 2^64."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.ip_network(address + "/64", strict=False))
    except ValueError:
        return address


def _address(text: str) -> Address | None:
    """An X-Forwarded-For entry as an address: ``1.2.3.4``, ``1.2.3.4:80``,
    ``::1`` or ``[::1]:80``; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
