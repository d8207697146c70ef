"""The public keys of clients that authenticate with ``private_key_jwt``.

A client's keys are its inline JWK Set (``jwks``) or the one published at its
``jwks_uri``: never a key, or a URL, that an assertion names. Each client
gets one key source, made on first use and kept while its key configuration
stays the same. Inline keys are thus converted once; a ``jwks_uri`` is
fetched once, then cached for as long as its ``Cache-Control`` says (within
the bounds of ``tessera.verify``), and refetched for an unknown ``kid`` at
most once per refresh interval. A client whose keys change in the store
gets a new source, so the change applies to its next request.

The sources are those of ``tessera.verify``: ``StaticKeys`` for inline keys,
and ``DiscoveredKeys`` told the ``jwks_uri`` instead of discovering it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tessera.core.client_assertion import ALGORITHMS
from tessera.core.clients import Client
from tessera.core.errors import InvalidClient, TemporarilyUnavailable
from tessera.verify._discovery import DiscoveredKeys, KeySource, StaticKeys
from tessera.verify._http import check_url, new_client
from tessera.verify._keys import KeySet, PublicKey, load_jwks

__all__ = ["ClientKeySources", "JwksUriKeys", "load_client_jwks"]

FETCH_TIMEOUT = 3.0


class JwksUriKeys(DiscoveredKeys):
    """``DiscoveredKeys`` for a JWK Set URL given directly: there is no
    metadata document to read first."""

    def __init__(
        self,
        jwks_uri: str,
        algorithms: frozenset[str],
        *,
        client: Callable[[], httpx.AsyncClient],
        clock: Callable[[], float],
        refresh_interval: float,
        fetch_timeout: float | None = None,
    ) -> None:
        self._configured_uri = check_url(jwks_uri, "jwks_uri")
        super().__init__(
            jwks_uri,
            algorithms,
            client=client,
            clock=clock,
            refresh_interval=refresh_interval,
            fetch_timeout=fetch_timeout,
        )

    async def _discover(self, client: httpx.AsyncClient) -> str:
        return self._configured_uri


def load_client_jwks(jwks: str) -> KeySet:
    """A client's inline JWK Set (JSON text) as keys; ValueError when it has
    no usable key. Private members, if any, are never read."""
    try:
        document = json.loads(jwks)
    except RecursionError:
        raise ValueError("the JWK Set is nested too deeply") from None
    return load_jwks(document, ALGORITHMS)


@dataclass
class _Entry:
    """One client's key source, and the configuration it was made from."""

    config: tuple[str | None, str | None]
    source: KeySource | None
    # Why the configuration is unusable, when there is no source.
    problem: str = ""
    failed_at: float = float("-inf")


class ClientKeySources:
    """The key sources of every private_key_jwt client, by client id.

    ``clock`` returns seconds since the epoch and times the caches. ``http``
    is used as given and never closed; without it a client with short
    timeouts is opened on first fetch and closed by ``close``.
    ``refresh_interval`` is the least time between two fetches of one
    client's ``jwks_uri`` for an unknown ``kid``, and also after a fetch
    that failed; ``fetch_timeout`` bounds one fetch.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        http: httpx.AsyncClient | None = None,
        refresh_interval: float = 30.0,
        fetch_timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self._clock = clock
        self._http = http
        self._owns_http = http is None
        self._refresh_interval = refresh_interval
        self._fetch_timeout = fetch_timeout
        self._entries: dict[str, _Entry] = {}

    async def find(self, client: Client, kid: str | None, alg: str) -> PublicKey | None:
        entry = self._entry(client)
        if entry.source is None:
            raise InvalidClient(detail=entry.problem)
        source = entry.source

        keys = source.fresh(self._clock())
        key = None if keys is None else keys.find(kid, alg)
        if key is not None:
            return key

        keys = await self._load(entry, source)
        key = keys.find(kid, alg)
        if key is None and kid not in keys.kids:
            # Maybe a key the client published since the last fetch; asked
            # for at most once per refresh interval, however many kids.
            keys = await source.refresh()
            key = keys.find(kid, alg)
        return key

    async def _load(self, entry: _Entry, source: KeySource) -> KeySet:
        # With no keys yet, DiscoveredKeys fetches on every load: a client
        # whose jwks_uri is down would cost one fetch per request.
        now = self._clock()
        if now - entry.failed_at < self._refresh_interval:
            raise TemporarilyUnavailable(detail="client keys could not be fetched")
        try:
            return await source.load()
        except TemporarilyUnavailable:
            entry.failed_at = now
            raise

    def _entry(self, client: Client) -> _Entry:
        config = (client.jwks, client.jwks_uri)
        entry = self._entries.get(client.client_id)
        if entry is None or entry.config != config:
            entry = self._entries[client.client_id] = self._new_entry(config)
        return entry

    def _new_entry(self, config: tuple[str | None, str | None]) -> _Entry:
        jwks, jwks_uri = config
        if jwks is not None and jwks_uri is not None:
            return _Entry(config, None, "client has both jwks and jwks_uri")
        if jwks is not None:
            try:
                return _Entry(config, StaticKeys(load_client_jwks(jwks)))
            except ValueError as exc:
                return _Entry(config, None, f"client jwks unusable: {exc}")
        if jwks_uri is not None:
            try:
                source = JwksUriKeys(
                    jwks_uri,
                    ALGORITHMS,
                    client=self._client,
                    clock=self._clock,
                    refresh_interval=self._refresh_interval,
                    fetch_timeout=self._fetch_timeout,
                )
            except ValueError as exc:
                return _Entry(config, None, f"client jwks_uri unusable: {exc}")
            return _Entry(config, source)
        return _Entry(config, None, "client has neither jwks nor jwks_uri")

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = new_client(timeout=self._fetch_timeout)
        return self._http

    async def close(self) -> None:
        """Close the HTTP client opened here, if any."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
