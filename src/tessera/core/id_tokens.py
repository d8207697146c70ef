"""ID tokens (OpenID Connect Core §2): who signed in, for which client.

Always RS256, the one algorithm every relying party must accept (OIDC Core
§3.1.3.7 step 7, Discovery §3), from the same key ring as access tokens,
which keeps an RS256 key for this. The header's ``typ`` is ``JWT``, never
``at+jwt``, so an ID token cannot pass for an access token anywhere that
checks the type (RFC 9068 §4), introspection and userinfo included.

An ID token lives a few minutes: it tells a relying party about one sign-in
and grants nothing, so nothing would be gained by a longer life, and it
must not outlive the publication of the key that signed it (``max_ttl``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tessera.core.errors import InvalidRequest
from tessera.keys.ring import KeyRing

ID_TOKEN_ALG = "RS256"  # noqa: S105
ID_TOKEN_TYP = "JWT"  # noqa: S105
ID_TOKEN_TTL = 300
MAX_HINT_BYTES = 8192


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: the base64url of the left half of the access
    token's hash, the hash being the one of the ID token's ``alg`` (SHA-256
    for RS256). It binds the access token to the ID token it came with."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


class IdTokens:
    """Signs ID tokens. (Reading one back, as an ``id_token_hint``, is
    ``read_id_token_hint``'s.)

    ``keyring`` returns the node's current key ring: the ring is replaced
    whenever a key is added, and this reads whichever is current."""

    def __init__(
        self,
        issuer: str,
        keyring: Callable[[], KeyRing],
        *,
        max_ttl: int,
        ttl: int = ID_TOKEN_TTL,
    ) -> None:
        self.issuer = issuer
        self._keyring = keyring
        self.ttl = min(ttl, max_ttl)

    def sign(
        self,
        *,
        client_id: str,
        subject: str,
        auth_time: int,
        now: float,
        nonce: str | None = None,
        access_token: str | None = None,
        sid: str | None = None,
    ) -> str:
        """An ID token for ``client_id`` (its ``aud`` and ``azp``). ``nonce``
        is echoed from the authorization request (OIDC Core §3.1.2.1);
        ``access_token`` is the one issued with it, bound by ``at_hash``."""
        key = self._keyring().signing_key(ID_TOKEN_ALG, now)
        issued_at = int(now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "exp": issued_at + self.ttl,
            "iat": issued_at,
            "auth_time": auth_time,
            "azp": client_id,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["at_hash"] = at_hash(access_token)
        if sid is not None:
            claims["sid"] = sid
        return key.sign_jwt(claims, typ=ID_TOKEN_TYP)


@dataclass(frozen=True, slots=True)
class IdTokenHint:
    subject: str
    client_id: str


def read_id_token_hint(token: str, issuer: str, keys: KeySet) -> IdTokenHint:
    """The subject and client of an ID token this issuer signed, expired or
    not; raises InvalidRequest for anything else. Only the ID tokens' own
    algorithm and ``typ`` are accepted, so an access token signed with the
    same keys is no hint (tessera.core.id_tokens)."""
    invalid = InvalidRequest("The id_token_hint is not a valid ID token.")
    if len(token) > MAX_HINT_BYTES:
        raise invalid
    try:
        signed = jws.deserialize_compact(token, keys, algorithms=[ID_TOKEN_ALG])
        claims: Any = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError, RecursionError):
        raise invalid from None
    if signed.protected.get("typ") != ID_TOKEN_TYP:
        raise invalid
    if not isinstance(claims, dict) or claims.get("iss") != issuer:
        raise invalid
    subject, audience = claims.get("sub"), claims.get("aud")
    # Tessera's ID tokens have one audience, the client, as a string.
    if not isinstance(subject, str) or not isinstance(audience, str):
        raise invalid
    return IdTokenHint(subject, audience)
