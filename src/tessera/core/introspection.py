"""Introspection (RFC 7662) and revocation (RFC 7009) of the issuer's own
access tokens and refresh tokens. A refresh token is only ever shown to, and
revoked by, its own client; revoking one revokes its whole family.

Neither is on the issuance hot path, so the issuer's own tokens are read
with joserfc against the published key set rather than a fast path."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tessera.core.clients import Client, ClientDirectory
from tessera.core.errors import InvalidRequest
from tessera.core.exchange import POLICY_CLIENT_PREFIX, PolicyDirectory
from tessera.core.refresh import PREFIX as REFRESH_TOKEN_PREFIX
from tessera.core.refresh import RefreshTokens
from tessera.keys.ring import KeyRing
from tessera.keys.signing import ALGORITHMS

MAX_TOKEN_BYTES = 8192
INACTIVE: dict[str, Any] = {"active": False}


class RevocationStore(Protocol):
    async def revoke(self, jti: str, client_id: str, expires_at: int, now: int) -> None:
        """Record the revocation; idempotent."""
        ...

    async def is_revoked(self, jti: str) -> bool:
        """Raises when the store cannot answer: never guess."""
        ...


class TokenInspector:
    def __init__(
        self,
        issuer: str,
        keyring: KeyRing,
        revocations: RevocationStore,
        clients: ClientDirectory,
        *,
        policies: PolicyDirectory | None = None,
        refresh: RefreshTokens | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.keyring = keyring
        self._revocations = revocations
        self._clients = clients
        self._policies = policies
        self._refresh = refresh
        self._clock = clock
        self._key_set: tuple[str, KeySet] | None = None

    def read(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this issuer signed with a published key, or
        None. Expiry is left to the caller."""
        if len(token) > MAX_TOKEN_BYTES:
            return None
        try:
            signed = jws.deserialize_compact(
                token, self._published_keys(), algorithms=ALGORITHMS
            )
            header = signed.protected
            claims = json.loads(signed.payload)
        except (JoseError, ValueError, TypeError, RecursionError):
            return None
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        if not all(isinstance(claims.get(name), str) for name in ("jti", "client_id")):
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            return None
        return claims

    def _published_keys(self) -> KeySet:
        body, etag = self.keyring.jwks(self._clock())
        if self._key_set is None or self._key_set[0] != etag:
            self._key_set = (etag, KeySet.import_key_set(json.loads(body)))
        return self._key_set[1]

    async def introspect(self, token: str, caller: Client) -> dict[str, Any]:
        if self._refresh is not None and token.startswith(REFRESH_TOKEN_PREFIX):
            record = await self._refresh.find(token)
            if record is None or record.client_id != caller.client_id:
                return INACTIVE
            return self._refresh.introspect(record, self._clock())
        claims = self.read(token)
        if claims is None or claims["exp"] <= self._clock():
            return INACTIVE
        if not _may_see(caller, claims):
            return INACTIVE
        if not await self._still_valid(claims):
            return INACTIVE
        return {"active": True, "token_type": "Bearer", **claims}

    async def active_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of an access token that is active, whoever may see
        it; None otherwise. For endpoints the token itself opens (userinfo)."""
        claims = self.read(token)
        if claims is None or claims["exp"] <= self._clock():
            return None
        return claims if await self._still_valid(claims) else None

    async def _still_valid(self, claims: dict[str, Any]) -> bool:
        if await self._revocations.is_revoked(claims["jti"]):
            return False
        # A token outlives neither its client's deletion nor its disabling;
        # nor, for a federated token, its trust policy's.
        return await self._owner_active(claims)

    async def _owner_active(self, claims: dict[str, Any]) -> bool:
        policy_name = claims.get("trust_policy")
        if isinstance(policy_name, str) and self._policies is not None:
            policy = self._policies.get(policy_name)
            if policy is None or policy.disabled:
                return False
            if claims["client_id"].startswith(POLICY_CLIENT_PREFIX):
                return True
        owner = await self._clients.get(claims["client_id"])
        return owner is not None and not owner.disabled

    async def revoke(self, token: str, caller: Client) -> bool:
        """Revoke the token; False when there was nothing to revoke. RFC 7009
        §2.2: an invalid or expired token is not an error."""
        now = self._clock()
        if self._refresh is not None and token.startswith(REFRESH_TOKEN_PREFIX):
            record = await self._refresh.find(token)
            if record is None or record.revoked_at is not None:
                return False
            if record.client_id != caller.client_id:
                raise InvalidRequest("The token was not issued to this client.")
            await self._refresh.revoke_family(
                record.family_id, now, client_id=caller.client_id, reason="revoked"
            )
            return True
        claims = self.read(token)
        if claims is None or claims["exp"] <= now:
            return False
        if claims["client_id"] != caller.client_id:
            raise InvalidRequest("The token was not issued to this client.")
        await self._revocations.revoke(
            claims["jti"], claims["client_id"], claims["exp"], int(now)
        )
        return True


def _may_see(caller: Client, claims: dict[str, Any]) -> bool:
    """RFC 7662 §4: the token's own client, or a protected resource the token
    is meant for: a client marked ``may_introspect`` whose audiences include
    one of the token's. Being allowed to ask for tokens for an API is not
    being that API, so the mark is needed."""
    if claims["client_id"] == caller.client_id:
        return True
    if not caller.may_introspect:
        return False
    audience = claims.get("aud")
    audiences = {audience} if isinstance(audience, str) else set(audience or ())
    return bool(audiences & set(caller.audiences))
