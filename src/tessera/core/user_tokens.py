"""What the grants made on a person's behalf (authorization code, refresh
token) issue: an access token for the person, and an ID token when the
``openid`` scope was granted. Both grants use this one place, so their
tokens look the same whichever grant they came from.

The access token (RFC 9068) has the person as ``sub`` and the client as
``client_id``, its ``aud`` the client's registered audiences, and
``auth_time``, which marks it as issued on a person's sign-in. A client
registered for sign-in only, without audiences, gets tokens meant for the
userinfo endpoint alone (``fallback_audience``).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Any, Protocol

from tessera.core.audit import Audit
from tessera.core.clients import Client
from tessera.core.errors import InvalidGrant
from tessera.core.id_tokens import IdTokens
from tessera.core.minting import AccessTokenMinter, IssuedToken

OPENID = "openid"


class Person(Protocol):
    """A user as the token endpoint and userinfo read one."""

    @property
    def user_id(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def email(self) -> str | None: ...

    @property
    def disabled(self) -> bool: ...


class People(Protocol):
    async def get(self, user_id: str) -> Person | None:
        """The user, or None when there is no such user. Raises when the
        store cannot answer."""
        ...


@dataclass(frozen=True, slots=True)
class Authorization:
    """What a person let a client have, as a code or a refresh token
    carries it: ``scope`` space-separated, ``auth_time`` when they signed
    in (OIDC Core §2), ``nonce`` from the authorization request."""

    user_id: str
    scope: str
    auth_time: int
    nonce: str | None = None


@dataclass(frozen=True, slots=True)
class UserTokenSet:
    access: IssuedToken
    scope: str
    id_token: str | None


class UserTokens:
    def __init__(
        self,
        minter: AccessTokenMinter,
        id_tokens: IdTokens,
        people: People,
        *,
        fallback_audience: str,
        audit: Audit,
    ) -> None:
        self._minter = minter
        self._id_tokens = id_tokens
        self._people = people
        self._fallback_audience = fallback_audience
        self._audit = audit

    async def check_person(self, user_id: str) -> None:
        """A deleted or disabled person's grants are over."""
        person = await self._people.get(user_id)
        if person is None or person.disabled:
            raise InvalidGrant(detail="user unknown or disabled")

    def issue(
        self, client: Client, grant: Authorization, now: float, *, grant_type: str
    ) -> UserTokenSet:
        """The access token, and the ID token when ``openid`` was granted,
        for a grant whose checks have all passed."""
        audiences = client.audiences or (self._fallback_audience,)
        access = self._minter.mint_for(
            client.client_id,
            grant.user_id,
            grant.scope,
            audiences,
            now,
            alg=client.signing_alg,
            ttl=client.token_ttl,
            extra={"auth_time": grant.auth_time},
        )
        id_token = None
        if OPENID in grant.scope.split(" "):
            id_token = self._id_tokens.sign(
                client_id=client.client_id,
                subject=grant.user_id,
                auth_time=grant.auth_time,
                now=now,
                nonce=grant.nonce,
                access_token=access.access_token,
            )
        self._audit.emit(
            "token.issued",
            client_id=client.client_id,
            grant_type=grant_type,
            subject=grant.user_id,
            jti=access.jti,
            kid=access.kid,
            scope=grant.scope,
            audience=list(audiences),
            expires_in=access.expires_in,
            id_token=id_token is not None,
        )
        return UserTokenSet(access, grant.scope, id_token)


def granted_scope(granted: Set[str], client: Client) -> str:
    """The granted scope the client still holds: a scope taken from the
    client since the person granted it is no longer conveyed."""
    return " ".join(sorted(set(granted) & client.scopes))


def token_response(tokens: UserTokenSet, refresh_token: str | None) -> dict[str, Any]:
    """RFC 6749 §5.1, with ``id_token`` (OIDC Core §3.1.3.3). The scope is
    sent whenever there is one: it may be narrower than the one asked for."""
    body: dict[str, Any] = {
        "access_token": tokens.access.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.access.expires_in,
    }
    if tokens.scope:
        body["scope"] = tokens.scope
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    if tokens.id_token is not None:
        body["id_token"] = tokens.id_token
    return body
