"""JWTs signed by external issuers: CI systems and Kubernetes clusters.

``ExternalIssuers.verify`` runs, cheapest first:

    check_size, check_segments      _jws.split_token, _jws.decode_segment
    check_header                    alg allow-list, typ JWT or none, no crit
    load_key                        kid among the issuer's keys, never the token's
    check_signature                 cryptography, on a key converted once
    check_claims                    iss, exp, nbf, iat, sub

Every refusal is ``InvalidGrant`` (RFC 7523 §3.1) with a private detail that
never repeats the token; a grant that answers otherwise translates it.
``aud`` is left to the trust policy, which knows the audience it expects.

The key sources are those of ``tessera.verify``: one ``DiscoveredKeys`` per
issuer URL, or one ``StaticKeys`` per pinned key set, created on first use and
kept, so that after the first fetch a verification makes no request and
converts no key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature

from tessera.core.errors import InvalidGrant, InvalidToken
from tessera.verify._claims import _is_number
from tessera.verify._discovery import DiscoveredKeys, KeySource, StaticKeys
from tessera.verify._http import new_client
from tessera.verify._jws import (
    JoseHeader,
    decode_json_object,
    decode_segment,
    parse_header,
    shown,
    split_token,
)
from tessera.verify._keys import KeySet, PublicKey, load_jwks

__all__ = ["ALGORITHMS", "MAX_TOKEN_BYTES", "ExternalIssuers", "peek_issuer"]

# Asymmetric only: an external issuer shares no secret with Tessera, so an
# HS256 token could only be keyed with something public.
ALGORITHMS = frozenset({"ES256", "EdDSA", "PS256", "RS256"})
MAX_TOKEN_BYTES = 16 * 1024
MAX_LEEWAY = 300.0
MAX_CACHED_HEADERS = 256
FETCH_TIMEOUT = 3.0


def peek_issuer(token: str, max_bytes: int = MAX_TOKEN_BYTES) -> str | None:
    """The ``iss`` of ``token`` before any check, or None if it has none.

    Only for choosing which configured issuer to verify against: nothing here
    is trusted, and nothing is ever fetched on its word.
    """
    if not isinstance(token, str) or len(token) > max_bytes:
        return None
    # The payload alone: an unsigned token (empty signature) still names
    # its issuer, so that its refusal is audited against that issuer's
    # policies; verification refuses it.
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1].encode("ascii")
        claims = decode_json_object(decode_segment(payload), "payload")
    except (InvalidToken, UnicodeEncodeError):
        return None

    iss = claims.get("iss")
    return iss if type(iss) is str and iss else None


class ExternalIssuers:
    """The keys of every external issuer, and verification of their tokens.

    ``clock`` returns seconds since the epoch and also times the key caches.
    ``http`` is used as given and never closed; without it a client with
    short timeouts is opened on first fetch and closed by ``aclose``.
    ``refresh_interval`` is the least time between two refetches for an
    unknown ``kid``; ``fetch_timeout`` bounds one fetch of an issuer's keys.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        http: httpx.AsyncClient | None = None,
        refresh_interval: float = 30.0,
        leeway: float = 60.0,
        fetch_timeout: float = FETCH_TIMEOUT,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY:g} seconds")
        if refresh_interval < 1:
            raise ValueError("refresh_interval must be at least 1 second")
        if fetch_timeout <= 0:
            raise ValueError("fetch_timeout must be positive")

        self.leeway = float(leeway)
        self._clock = clock
        self._http = http
        self._owns_http = http is None
        self._refresh_interval = float(refresh_interval)
        self._fetch_timeout = float(fetch_timeout)
        self._discovered: dict[str, DiscoveredKeys] = {}
        self._pinned: dict[str, StaticKeys] = {}
        self._headers: dict[bytes, JoseHeader] = {}

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = new_client(timeout=self._fetch_timeout)
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client opened here, if any."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def issuer_of(self, token: str) -> str | None:
        """``peek_issuer(token)``, for callers that hold only this object."""
        return peek_issuer(token)

    async def __aenter__(self) -> ExternalIssuers:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def verify(
        self,
        token: str,
        issuer: str,
        *,
        pinned_jwks: Mapping[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """Verify ``token`` as issued by ``issuer`` and return its claims.

        The keys are ``pinned_jwks`` when given, a JWK Set as a mapping or as
        JSON text, else those the issuer publishes through its metadata.

        Raises ``InvalidGrant`` for a token that is not acceptable, and
        ``TemporarilyUnavailable`` when the issuer's keys cannot be fetched
        and none are cached. ``ValueError`` means a configuration error: an
        issuer URL that is not https, or a pinned key set without one usable
        key.
        """
        try:
            signing_input, header_b64, payload_b64, signature_b64 = split_token(
                token, MAX_TOKEN_BYTES
            )
            payload = decode_segment(payload_b64)
            signature = decode_segment(signature_b64)
            header = self._headers.get(header_b64) or self._check_header(header_b64)
        except InvalidToken as exc:
            raise InvalidGrant(detail=exc.detail) from None

        key = await self._load_key(self._source(issuer, pinned_jwks), header)
        try:
            key.check(signature, signing_input)
        except InvalidSignature:
            raise InvalidGrant(detail="bad signature") from None

        try:
            claims = decode_json_object(payload, "payload")
        except InvalidToken as exc:
            raise InvalidGrant(detail=exc.detail) from None
        check_claims(claims, issuer, self._clock(), self.leeway)
        return claims

    def _check_header(self, segment: bytes) -> JoseHeader:
        # GitHub and GitLab send "typ": "JWT", Kubernetes sends no typ; an
        # access token ("at+jwt") or any other type is meant for something
        # else. jku, jwk, x5u, x5c and x5t are ignored rather than refused:
        # the key never comes from the token, and issuers do send x5t or x5c
        # next to kid.
        header = parse_header(segment, ALGORITHMS, typ="JWT", typ_required=False)
        # Every issuer federated with names its key; without a kid, a token
        # could only be matched to a key by trying them.
        if header.kid is None:
            raise InvalidToken(detail="kid missing")

        if len(self._headers) >= MAX_CACHED_HEADERS:
            self._headers.clear()
        self._headers[segment] = header
        return header

    def _source(
        self, issuer: str, pinned_jwks: Mapping[str, Any] | str | None
    ) -> KeySource:
        if pinned_jwks is None:
            discovered = self._discovered.get(issuer)
            if discovered is None:
                discovered = self._discovered[issuer] = DiscoveredKeys(
                    issuer,
                    ALGORITHMS,
                    client=self._client,
                    clock=self._clock,
                    refresh_interval=self._refresh_interval,
                    fetch_timeout=self._fetch_timeout,
                )
            return discovered

        # Keyed by content, so that policies naming the same keys share one
        # conversion, and a policy reloaded with new keys gets new ones.
        if isinstance(pinned_jwks, str):
            fingerprint = pinned_jwks
        else:
            fingerprint = json.dumps(pinned_jwks, sort_keys=True, default=_plain)
        pinned = self._pinned.get(fingerprint)
        if pinned is None:
            pinned = self._pinned[fingerprint] = StaticKeys(_load_pinned(pinned_jwks))
        return pinned

    async def _load_key(self, source: KeySource, header: JoseHeader) -> PublicKey:
        kid, alg = header.kid, header.alg
        keys = source.fresh(self._clock())
        key = None if keys is None else keys.find(kid, alg)
        if key is not None:
            return key

        keys = await source.load()
        key = keys.find(kid, alg)
        if key is None and kid not in keys.kids:
            # Maybe a key published since the last fetch. refresh() asks the
            # issuer at most once per refresh interval, so a stream of made-up
            # kids costs one request; a key the issuer has removed is gone
            # from the set it returns.
            keys = await source.refresh()
            key = keys.find(kid, alg)

        if key is not None:
            return key
        if kid in keys.kids:
            raise InvalidGrant(detail=f"key {shown(kid)} is not {alg}")
        raise InvalidGrant(detail=f"unknown kid {shown(kid)}")


def check_claims(
    claims: Mapping[str, Any], issuer: str, now: float, leeway: float
) -> None:
    """Raise ``InvalidGrant`` unless ``claims`` hold for ``issuer`` at ``now``.

    RFC 7523 §3 items 1, 2, 4, 5 and 6; ``aud`` (item 3) is the trust
    policy's to check.
    """
    iss = claims.get("iss")
    if type(iss) is not str or iss != issuer:
        raise InvalidGrant(detail="wrong issuer")

    exp = claims.get("exp")
    if not _is_number(exp):
        raise InvalidGrant(detail="exp missing or not a number")
    if exp <= now - leeway:
        raise InvalidGrant(detail="external token expired")
    if "nbf" in claims:
        nbf = claims["nbf"]
        if not _is_number(nbf):
            raise InvalidGrant(detail="nbf not a number")
        if nbf > now + leeway:
            raise InvalidGrant(detail="external token not yet valid")
    if "iat" in claims:
        iat = claims["iat"]
        if not _is_number(iat):
            raise InvalidGrant(detail="iat not a number")
        if iat > now + leeway:
            raise InvalidGrant(detail="external token issued in the future")

    sub = claims.get("sub")
    if type(sub) is not str or not sub:
        raise InvalidGrant(detail="sub missing or not a string")


def _load_pinned(pinned_jwks: Mapping[str, Any] | str) -> KeySet:
    try:
        document = (
            json.loads(pinned_jwks) if isinstance(pinned_jwks, str) else pinned_jwks
        )
        return load_jwks(document, ALGORITHMS)
    except ValueError as exc:
        # json.JSONDecodeError is a ValueError, and says where the text broke.
        raise ValueError(f"pinned_jwks: {exc}") from None


def _plain(value: object) -> object:
    # json.dumps knows dict, not every Mapping a policy may hold.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
