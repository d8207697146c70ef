"""The userinfo endpoint (OpenID Connect Core §5.3): claims about the person
an access token was issued for.

    read_bearer_token → load_claims (active, this issuer's)
    → check_person_token → check_scope (openid) → load_person → claims

The token comes in the Authorization header only (RFC 6750 §2.1): a token
in a query string ends up in logs. It is checked as introspection checks
it, revocation and the client's state included, but for no audience: every
token issued on a person's sign-in may read that person's claims, which is
what ``openid`` in its scope granted. Claims follow the scopes (OIDC Core
§5.4): ``profile`` gives ``name`` and ``preferred_username``, ``email``
gives ``email``; a claim without a value is left out (§5.3.2).
"""

from __future__ import annotations

from typing import Any, Protocol

from tessera.core.errors import InsufficientScope, InvalidRequest, InvalidToken
from tessera.core.user_tokens import OPENID, People, Person

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
# "/" ) *"="
_B64TOKEN = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
)
MAX_TOKEN_CHARS = 8192


class MissingToken(Exception):
    """The request has no bearer token: RFC 6750 §3.1 answers a bare
    challenge, without an error code."""


class ActiveTokens(Protocol):
    async def active_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of an active access token of this issuer, or None."""
        ...


def read_bearer_token(authorization: str | None, body_token: str | None = None) -> str:
    """The token from the Authorization header (RFC 6750 §2.1), or from a
    posted form's ``access_token`` (§2.2); never both (§2)."""
    if body_token is not None:
        if authorization is not None:
            raise InvalidRequest("The access token was sent more than once.")
        return check_token_syntax(body_token)
    if authorization is None:
        raise MissingToken()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken()
    return check_token_syntax(token.strip())


def check_token_syntax(token: str) -> str:
    if (
        not token
        or len(token) > MAX_TOKEN_CHARS
        or not set(token) <= _B64TOKEN
        or "=" in token.rstrip("=")
    ):
        raise InvalidToken(detail="malformed bearer token")
    return token


class UserInfo:
    def __init__(self, tokens: ActiveTokens, people: People) -> None:
        self._tokens = tokens
        self._people = people

    async def claims(
        self, authorization: str | None, body_token: str | None = None
    ) -> dict[str, Any]:
        token = read_bearer_token(authorization, body_token)
        claims = await self._load_claims(token)
        check_person_token(claims)
        scopes = check_scope(claims)
        person = await self._load_person(claims["sub"])
        return person_claims(person, scopes)

    async def _load_claims(self, token: str) -> dict[str, Any]:
        claims = await self._tokens.active_claims(token)
        if claims is None:
            raise InvalidToken(detail="token inactive or not this issuer's")
        return claims

    async def _load_person(self, user_id: str) -> Person:
        person = await self._people.get(user_id)
        if person is None or person.disabled:
            raise InvalidToken(detail="user unknown or disabled")
        return person


def check_person_token(claims: dict[str, Any]) -> None:
    """Only the person grants put ``auth_time`` in an access token; a
    client's own token, or a federated one, names no person."""
    if not isinstance(claims.get("auth_time"), int) or "trust_policy" in claims:
        raise InvalidToken(detail="not a token issued on a person's sign-in")
    if not isinstance(claims.get("sub"), str):
        raise InvalidToken(detail="token without a subject")


def check_scope(claims: dict[str, Any]) -> frozenset[str]:
    scope = claims.get("scope")
    scopes = frozenset(scope.split(" ")) if isinstance(scope, str) else frozenset()
    if OPENID not in scopes:
        raise InsufficientScope({OPENID})
    return scopes


def person_claims(person: Person, scopes: frozenset[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": person.user_id}
    if "profile" in scopes:
        if person.name:
            claims["name"] = person.name
        claims["preferred_username"] = person.username
    if "email" in scopes and person.email:
        claims["email"] = person.email
    return claims
