"""JWT access token claims (RFC 9068 §2.2) and their checks (RFC 9068 §4).

The checks run after the signature holds, in the order the RFC gives them:
issuer, audience, time window, then the claims a resource server relies on to
know who is calling. Numbers must be real JSON numbers: ``true`` is not ``1``
and ``NaN`` never compares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tessera.core.errors import InvalidToken

__all__ = ["AccessToken", "read_claims"]


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token.

    ``claims`` holds every claim of the token, read-only. ``audience`` is the
    ``aud`` claim as sent: one string, or a tuple when the token names several.
    """

    claims: Mapping[str, Any]
    subject: str
    client_id: str
    scopes: frozenset[str]
    audience: str | tuple[str, ...]
    expires_at: int | float
    jwt_id: str


def _is_number(value: object) -> bool:
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))  # type: ignore[arg-type]


def _lists_audience(aud: object, audience: str) -> bool:
    return (
        type(aud) is list and audience in aud and all(type(item) is str for item in aud)
    )


def read_claims(
    claims: dict[str, Any], issuer: str, audience: str, now: float, leeway: float
) -> AccessToken:
    """The ``AccessToken`` of ``claims``, or ``InvalidToken`` unless they hold."""
    # Every token passes here: claims.get is bound once, and the common case,
    # an integer time, is tested before the general number check.
    get = claims.get
    if get("iss") != issuer:
        raise InvalidToken(detail="wrong issuer")
    aud = get("aud")
    if aud != audience and not _lists_audience(aud, audience):
        raise InvalidToken(detail="wrong audience")

    exp = get("exp")
    if type(exp) is not int and not _is_number(exp):
        raise InvalidToken(detail="exp missing or not a number")
    if exp <= now - leeway:
        raise InvalidToken(detail="expired")
    if "nbf" in claims:
        nbf = claims["nbf"]
        if not _is_number(nbf):
            raise InvalidToken(detail="nbf not a number")
        if nbf > now + leeway:
            raise InvalidToken(detail="not yet valid")
    iat = get("iat")
    if type(iat) is not int and not _is_number(iat):
        raise InvalidToken(detail="iat missing or not a number")
    if iat > now + leeway:
        raise InvalidToken(detail="issued in the future")

    sub, client_id, jti = get("sub"), get("client_id"), get("jti")
    if type(sub) is not str or not sub:
        raise InvalidToken(detail="sub missing or not a string")
    if type(client_id) is not str or not client_id:
        raise InvalidToken(detail="client_id missing or not a string")
    if type(jti) is not str or not jti:
        raise InvalidToken(detail="jti missing or not a string")
    scope = get("scope", "")
    if type(scope) is not str:
        raise InvalidToken(detail="scope not a string")

    return AccessToken(
        MappingProxyType(claims),
        sub,
        client_id,
        frozenset(scope.split()),
        aud if type(aud) is str else tuple(aud),
        exp,
        jti,
    )
