"""``Verifier``: one JWT access token in, an ``AccessToken`` or an error out.

The pipeline, each step raising the RFC 6750 error for its failure:

    check_size, check_segments      _jws.split_token, _jws.decode_segment
    check_header                    _jws.parse_header, cached per header
    load_key                        kid and alg among the issuer's own keys
    check_signature                 cryptography, on a key converted once
    check_claims                    _claims.read_claims
    check_scopes                    InsufficientScope for what is missing
    check_active                    introspection, when configured

When the issuer's keys are cached, nothing in it waits on I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature

from tessera.core.errors import InsufficientScope, InvalidToken, TemporarilyUnavailable

from ._claims import AccessToken, read_claims
from ._discovery import DiscoveredKeys, KeySource, StaticKeys
from ._http import new_client
from ._introspection import Introspection
from ._jws import (
    JoseHeader,
    decode_json_object,
    decode_segment,
    parse_header,
    shown,
    split_token,
)
from ._keys import SUPPORTED_ALGORITHMS, PublicKey, load_jwks

__all__ = ["DEFAULT_ALGORITHMS", "Verifier"]

DEFAULT_ALGORITHMS = ("ES256", "EdDSA", "PS256", "RS256")
MAX_LEEWAY = 300.0
MAX_CACHED_HEADERS = 256


class Verifier:
    """Verifies access tokens of one issuer, for one audience.

    Keys are discovered from the issuer metadata unless ``jwks`` gives them.
    ``clock`` returns the current time in seconds since the epoch; it also
    times the key cache. ``http`` is used as given and never closed; without
    it the verifier opens its own client, closed by ``aclose``.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        clock: Callable[[], float] = time.time,
        max_token_bytes: int = 8192,
        http: httpx.AsyncClient | None = None,
        jwks_refresh_interval: float = 30.0,
        introspection: Introspection | None = None,
        jwks: Mapping[str, Any] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.leeway = float(leeway)
        self._clock = clock
        self._max_token_bytes = max_token_bytes
        self._http = http
        self._owns_http = http is None
        self._introspection = introspection
        self._headers: dict[bytes, JoseHeader] = {}
        self._check_options(jwks_refresh_interval)

        self._keys: KeySource
        if jwks is None:
            self._keys = DiscoveredKeys(
                issuer,
                self.algorithms,
                client=self._client,
                clock=clock,
                refresh_interval=jwks_refresh_interval,
            )
        else:
            self._keys = StaticKeys(load_jwks(jwks, self.algorithms))
            if introspection is not None and introspection.endpoint is None:
                raise ValueError("introspection needs an endpoint without discovery")

    @classmethod
    def from_jwks(
        cls, issuer: str, audience: str, jwks: Mapping[str, Any], **options: Any
    ) -> Verifier:
        """A verifier with a fixed key set, which never fetches keys."""
        return cls(issuer, audience, jwks=jwks, **options)

    def _check_options(self, jwks_refresh_interval: float) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("issuer and audience are required")
        if not self.algorithms or not self.algorithms <= SUPPORTED_ALGORITHMS:
            supported = ", ".join(sorted(SUPPORTED_ALGORITHMS))
            raise ValueError(f"algorithms must be among {supported}")
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY:g} seconds")
        if self._max_token_bytes < 256:
            raise ValueError("max_token_bytes is too small for any token")
        if jwks_refresh_interval < 1:
            raise ValueError("jwks_refresh_interval must be at least 1 second")

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = new_client()
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client the verifier opened, if any."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Verifier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def verify(
        self, token: str, required_scopes: Collection[str] = ()
    ) -> AccessToken:
        """Verify ``token`` and return its claims, or raise.

        Raises ``InvalidToken`` for any token that is not acceptable,
        ``InsufficientScope`` when it lacks one of ``required_scopes``, and
        ``TemporarilyUnavailable`` when the issuer cannot be reached.
        """
        signing_input, header_b64, payload_b64, signature_b64 = split_token(
            token, self._max_token_bytes
        )
        payload = decode_segment(payload_b64)
        signature = decode_segment(signature_b64)
        header = self._headers.get(header_b64)
        if header is None:
            header = self._check_header(header_b64)

        now = self._clock()
        keys = self._keys.fresh(now)
        key = None if keys is None else keys.find(header.kid, header.alg)
        if key is None:
            key = await self._load_key(header)

        try:
            key.check(signature, signing_input)
        except InvalidSignature:
            raise InvalidToken(detail="bad signature") from None

        claims = decode_json_object(payload, "payload")
        access_token = read_claims(claims, self.issuer, self.audience, now, self.leeway)

        if required_scopes:
            self._check_scopes(access_token, required_scopes)
        if self._introspection is not None:
            await self._check_active(
                self._introspection, token, signature_b64, access_token, now
            )
        return access_token

    def _check_header(self, segment: bytes) -> JoseHeader:
        header = parse_header(segment, self.algorithms)
        if len(self._headers) >= MAX_CACHED_HEADERS:
            self._headers.clear()
        self._headers[segment] = header
        return header

    async def _load_key(self, header: JoseHeader) -> PublicKey:
        keys = await self._keys.load()
        key = keys.find(header.kid, header.alg)
        if key is not None:
            return key
        if header.kid is None:
            raise InvalidToken(detail=f"no kid, and no single {header.alg} key")
        if header.kid in keys.kids:
            raise InvalidToken(detail=f"key {shown(header.kid)} is not {header.alg}")

        keys = await self._keys.refresh()
        key = keys.find(header.kid, header.alg)
        if key is None:
            raise InvalidToken(detail=f"unknown kid {shown(header.kid)}")
        return key

    def _check_scopes(
        self, access_token: AccessToken, required_scopes: Collection[str]
    ) -> None:
        if isinstance(required_scopes, str):
            raise TypeError("required_scopes must be a collection of scope names")
        if not access_token.scopes.issuperset(required_scopes):
            raise InsufficientScope(frozenset(required_scopes) - access_token.scopes)

    async def _check_active(
        self,
        introspection: Introspection,
        token: str,
        signature: bytes,
        access_token: AccessToken,
        now: float,
    ) -> None:
        endpoint = introspection.endpoint or self._keys.introspection_endpoint
        if endpoint is None:
            raise TemporarilyUnavailable(
                detail="issuer metadata names no introspection_endpoint"
            )
        await introspection.check(
            self._client(),
            endpoint,
            token,
            cache_key=signature,
            now=now,
            expires_at=access_token.expires_at,
        )
