"""Access tokens as JWTs (RFC 9068), signed with the key ring's current key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tessera.core.clients import Client
from tessera.keys.ring import KeyRing


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    jti: str
    kid: str


class AccessTokenMinter:
    def __init__(
        self,
        issuer: str,
        keyring: KeyRing,
        *,
        default_alg: str,
        default_ttl: int,
        max_ttl: int,
    ) -> None:
        self.issuer = issuer
        self.keyring = keyring
        self._default_alg = default_alg
        self._default_ttl = default_ttl
        self._max_ttl = max_ttl

    def mint(
        self,
        client: Client,
        scope: str,
        audiences: tuple[str, ...],
        now: float,
        *,
        subject: str | None = None,
    ) -> IssuedToken:
        """A signed access token for ``client``; ``scope`` is the
        space-separated claim value, left out when empty."""
        return self.mint_for(
            client.client_id,
            subject or client.client_id,
            scope,
            audiences,
            now,
            alg=client.signing_alg,
            ttl=client.token_ttl,
        )

    def mint_for(
        self,
        client_id: str,
        subject: str,
        scope: str,
        audiences: tuple[str, ...],
        now: float,
        *,
        alg: str | None = None,
        ttl: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> IssuedToken:
        """A signed access token; ``ttl`` is capped at the server's maximum,
        and ``extra`` claims never replace the registered ones."""
        key = self.keyring.signing_key(alg or self._default_alg, now)
        ttl = min(ttl or self._default_ttl, self._max_ttl)
        issued_at = int(now)
        jti = secrets.token_urlsafe(16)
        claims = {
            **(extra or {}),
            "iss": self.issuer,
            "sub": subject,
            "aud": audiences[0] if len(audiences) == 1 else list(audiences),
            "exp": issued_at + ttl,
            "iat": issued_at,
            "jti": jti,
            "client_id": client_id,
        }
        if scope:
            claims["scope"] = scope
        return IssuedToken(key.sign_jwt(claims), ttl, jti, key.kid)
