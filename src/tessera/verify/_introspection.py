"""Revocation checks through token introspection (RFC 7662).

A signed access token stays valid until it expires. A resource server that
must notice revocation sooner asks the issuer's introspection endpoint about
each token, after every local check has passed. Positive answers are kept for
a few seconds, keyed by the token's signature, so a burst of requests with one
token costs one round trip; negative answers are never kept.

The check fails closed: an endpoint that cannot be reached, refuses the
resource server's credentials, or answers nonsense makes the token unusable
for the moment (``TemporarilyUnavailable``), never accepted.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote_plus

import httpx

from tessera.core.errors import InvalidToken, TemporarilyUnavailable

from ._http import FetchError, check_url, fetch, parse_object

__all__ = ["Introspection"]

MAX_RESPONSE_BYTES = 64 * 1024

_log = logging.getLogger("tessera.verify")


class Introspection:
    """How and how often to ask the issuer whether a token is still active.

    ``endpoint`` defaults to the ``introspection_endpoint`` of the issuer
    metadata. ``client_id`` and ``client_secret`` are the resource server's
    own credentials at the issuer, sent with HTTP Basic (RFC 6749 §2.3.1).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        endpoint: str | None = None,
        cache_seconds: float = 5.0,
        max_cached: int = 10_000,
    ) -> None:
        if not 0 <= cache_seconds <= 300:
            raise ValueError("cache_seconds must be between 0 and 300")
        if max_cached < 1:
            raise ValueError("max_cached must be positive")
        self.endpoint = None if endpoint is None else check_url(endpoint, "endpoint")
        self.cache_seconds = cache_seconds
        self.max_cached = max_cached

        # RFC 6749 §2.3.1: each part is form-urlencoded before base64.
        credentials = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._active_until: dict[bytes, float] = {}

    def __repr__(self) -> str:
        return f"Introspection(endpoint={self.endpoint!r})"

    async def check(
        self,
        client: httpx.AsyncClient,
        endpoint: str,
        token: str,
        *,
        cache_key: bytes,
        now: float,
        expires_at: float,
    ) -> None:
        """Raise unless the issuer says ``token`` is active."""
        if self._active_until.get(cache_key, float("-inf")) > now:
            return

        try:
            reply = await fetch(
                client,
                "POST",
                endpoint,
                limit=MAX_RESPONSE_BYTES,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Authorization": self._authorization},
            )
            if reply.status != 200:
                raise FetchError(f"introspection answered {reply.status}")
            answer = parse_object(reply, "introspection response")
        except FetchError as exc:
            _log.warning("introspection failed: %s", exc)
            raise TemporarilyUnavailable(detail=f"introspection: {exc}") from None

        # RFC 7662 §2.2: anything but a literal true means inactive.
        if answer.get("active") is not True:
            self._active_until.pop(cache_key, None)
            raise InvalidToken(detail="revoked or inactive")
        self._remember(cache_key, min(now + self.cache_seconds, expires_at), now)

    def _remember(self, cache_key: bytes, until: float, now: float) -> None:
        if until <= now:
            return
        cache = self._active_until
        if len(cache) >= self.max_cached:
            for key in [key for key, end in cache.items() if end <= now]:
                del cache[key]
        while len(cache) >= self.max_cached:
            del cache[next(iter(cache))]
        cache[cache_key] = until
