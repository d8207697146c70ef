"""Access tokens as JWTs (RFC 9068), signed with the key ring's current key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

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
        """A signed access token; ``scope`` is the space-separated claim value,
        left out when empty."""
        key = self.keyring.signing_key(client.signing_alg or self._default_alg, now)
        ttl = min(client.token_ttl or self._default_ttl, self._max_ttl)
        issued_at = int(now)
        jti = secrets.token_urlsafe(16)
        claims = {
            "iss": self.issuer,
            "sub": subject or client.client_id,
            "aud": audiences[0] if len(audiences) == 1 else list(audiences),
            "exp": issued_at + ttl,
            "iat": issued_at,
            "jti": jti,
            "client_id": client.client_id,
        }
        if scope:
            claims["scope"] = scope
        return IssuedToken(key.sign_jwt(claims), ttl, jti, key.kid)
