"""Where the issuer's keys come from: a fixed set, or discovery over HTTP.

Discovery reads the authorization server metadata (RFC 8414), checks that it
speaks for the configured issuer, then reads the JWK Set at its ``jwks_uri``.
The key set is cached for as long as the JWK Set response's
``Cache-Control: max-age`` says, within bounds. A token with an unknown
``kid`` triggers a refetch only when the last fetch is at least one refresh
interval old, so that a stream of forged ``kid`` values cannot turn into a
stream of requests. An issuer therefore publishes a new key at least that long
before it signs with it.

Callers that arrive while a fetch runs wait for it and share its outcome. A
failed fetch keeps the previous keys in service; with no previous keys the
issuer is reported as temporarily unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import httpx

from tessera.core.errors import TemporarilyUnavailable

from ._http import FetchError, check_url, fetch, parse_object
from ._keys import KeySet, load_jwks

__all__ = ["DiscoveredKeys", "KeySource", "StaticKeys", "cache_lifetime"]

METADATA_PATHS = (
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
)
MAX_METADATA_BYTES = 64 * 1024
MAX_JWKS_BYTES = 256 * 1024

# Bounds on how long a fetched key set is trusted without asking again.
MIN_LIFETIME = 60.0
DEFAULT_LIFETIME = 300.0
MAX_LIFETIME = 86_400.0

_log = logging.getLogger("tessera.verify")


class KeySource(Protocol):
    """What ``Verifier`` needs from a source of issuer keys."""

    introspection_endpoint: str | None

    def fresh(self, now: float) -> KeySet | None:
        """The cached keys if they may be used without asking the issuer."""

    async def load(self) -> KeySet:
        """Keys to use now: fetched when the cache is empty or stale."""

    async def refresh(self) -> KeySet:
        """Keys after a refetch for an unknown ``kid``, when one is allowed."""


class StaticKeys:
    """A key set given up front; nothing is ever fetched."""

    introspection_endpoint: str | None = None

    def __init__(self, keys: KeySet) -> None:
        self._keys = keys

    def fresh(self, now: float) -> KeySet:
        return self._keys

    async def load(self) -> KeySet:
        return self._keys

    async def refresh(self) -> KeySet:
        return self._keys


class DiscoveredKeys:
    """The key set of ``issuer``, found through its metadata and cached.

    ``fetch_timeout``, when given, bounds each fetch (metadata and JWK Set
    together) in seconds; a fetch that overruns fails like any other.
    """

    def __init__(
        self,
        issuer: str,
        algorithms: frozenset[str],
        *,
        client: Callable[[], httpx.AsyncClient],
        clock: Callable[[], float],
        refresh_interval: float,
        fetch_timeout: float | None = None,
    ) -> None:
        self._issuer = check_url(issuer, "issuer")
        self._algorithms = algorithms
        self._client = client
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._fetch_timeout = fetch_timeout

        self.introspection_endpoint: str | None = None
        self._jwks_uri: str | None = None
        self._keys: KeySet | None = None
        self._expires_at = float("-inf")
        self._last_attempt = float("-inf")
        self._fetches_done = 0
        self._failure = "issuer keys not loaded yet"
        self._lock = asyncio.Lock()

    def fresh(self, now: float) -> KeySet | None:
        return self._keys if now < self._expires_at else None

    async def load(self) -> KeySet:
        return await self._fetch_shared(unless_fresh=True)

    async def refresh(self) -> KeySet:
        if self._clock() - self._last_attempt < self._refresh_interval:
            return self._current()
        return await self._fetch_shared(unless_fresh=False)

    def _current(self) -> KeySet:
        if self._keys is None:
            raise TemporarilyUnavailable(detail=self._failure)
        return self._keys

    async def _fetch_shared(self, *, unless_fresh: bool) -> KeySet:
        # A caller that finds a fetch running waits for it and takes its
        # outcome, success or failure, instead of starting another.
        seen = self._fetches_done
        async with self._lock:
            now = self._clock()
            if self._fetches_done != seen:
                return self._current()
            if unless_fresh and self.fresh(now) is not None:
                return self._current()

            # A fetch cut short by cancellation counts as not done: the next
            # waiter then fetches for itself.
            self._last_attempt = now
            try:
                keys, lifetime = await self._fetch_in_time()
            except FetchError as exc:
                self._fetches_done += 1
                self._fail(now, str(exc))
                return self._current()

            self._fetches_done += 1
            self._keys, self._expires_at = keys, now + lifetime
            _log.info("loaded %d issuer keys from %s", len(keys.keys), self._jwks_uri)
            return keys

    def _fail(self, now: float, reason: str) -> None:
        _log.warning("cannot load issuer keys: %s", reason)
        self._failure = reason
        # Look the metadata up again next time: jwks_uri may have moved.
        self._jwks_uri = None
        if self._keys is not None:
            self._expires_at = now + self._refresh_interval

    async def _fetch_in_time(self) -> tuple[KeySet, float]:
        # HTTP client timeouts bound each read, not a response sent slowly in
        # small pieces; ``fetch_timeout`` bounds metadata and JWK Set together.
        try:
            async with asyncio.timeout(self._fetch_timeout):
                return await self._fetch()
        except TimeoutError:
            timeout = self._fetch_timeout
            raise FetchError(f"issuer keys not fetched within {timeout:g}s") from None

    async def _fetch(self) -> tuple[KeySet, float]:
        client = self._client()
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover(client)

        reply = await fetch(client, "GET", self._jwks_uri, limit=MAX_JWKS_BYTES)
        if reply.status != 200:
            raise FetchError(f"{self._jwks_uri} answered {reply.status}")
        document = parse_object(reply, "JWK Set")
        try:
            keys = load_jwks(document, self._algorithms)
        except ValueError as exc:
            raise FetchError(f"JWK Set: {exc}") from None
        return keys, cache_lifetime(reply.headers.get("cache-control"))

    async def _discover(self, client: httpx.AsyncClient) -> str:
        base = self._issuer.rstrip("/")
        for path in METADATA_PATHS:
            reply = await fetch(client, "GET", base + path, limit=MAX_METADATA_BYTES)
            if reply.status != 404:
                break
        if reply.status != 200:
            raise FetchError(f"{base + path} answered {reply.status}")
        metadata = parse_object(reply, "issuer metadata")

        # RFC 8414 §3.3: the metadata must name exactly the configured issuer.
        if metadata.get("issuer") != self._issuer:
            raise FetchError("issuer in metadata differs from the configured one")
        try:
            jwks_uri = check_url(metadata.get("jwks_uri"), "jwks_uri")
        except ValueError as exc:
            raise FetchError(str(exc)) from None

        self.introspection_endpoint = None
        if "introspection_endpoint" in metadata:
            try:
                self.introspection_endpoint = check_url(
                    metadata["introspection_endpoint"], "introspection_endpoint"
                )
            except ValueError as exc:
                _log.warning("ignoring issuer metadata: %s", exc)
        return jwks_uri


def cache_lifetime(cache_control: str | None) -> float:
    """Seconds to keep a JWK Set, from its ``Cache-Control`` header."""
    max_age: int | None = None
    for directive in (cache_control or "").split(","):
        name, _, value = directive.partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return MIN_LIFETIME
        value = value.strip().strip('"')
        if name == "max-age" and value.isascii() and value.isdigit():
            max_age = int(value)

    if max_age is None:
        return DEFAULT_LIFETIME
    return min(max(float(max_age), MIN_LIFETIME), MAX_LIFETIME)
