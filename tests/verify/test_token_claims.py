"""The claims layer of ``Verifier.verify`` (RFC 9068 §4): issuer, audience,
time window with leeway and an injected clock, required claims and scopes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tessera.verify import AccessToken, InsufficientScope, InvalidToken, Verifier

from .conftest import (
    AUDIENCE,
    ISSUER,
    NOW,
    Case,
    FakeClock,
    Keys,
    check_refused,
    claims,
    make_key,
    mint,
)

ES = "ES256"


def c(**changes: Any) -> Callable[[Keys], str]:
    return lambda keys: mint(keys[ES], claims(**changes))


CLAIM_CASES = [
    Case("iss-other", c(iss="https://other.example"), "wrong issuer"),
    Case("iss-trailing-slash", c(iss=ISSUER + "/"), "wrong issuer"),
    Case("iss-missing", c(iss=...), "wrong issuer"),
    Case("aud-other", c(aud="https://other.example"), "wrong audience"),
    Case("aud-missing", c(aud=...), "wrong audience"),
    Case(
        "aud-list-without",
        c(aud=["https://a.example", "https://b.example"]),
        "wrong audience",
    ),
    Case("aud-list-with-number", c(aud=[AUDIENCE, 7]), "wrong audience"),
    Case("aud-empty-list", c(aud=[]), "wrong audience"),
    Case("aud-nested-list", c(aud=[[AUDIENCE]]), "wrong audience"),
    Case("exp-missing", c(exp=...), "exp missing or not a number"),
    Case("exp-true", c(exp=True), "exp missing or not a number"),
    Case("exp-string", c(exp=str(NOW + 300)), "exp missing or not a number"),
    Case("exp-null", c(exp=None), "exp missing or not a number"),
    Case("exp-at-leeway-edge", c(exp=NOW - 30), "expired"),
    Case("exp-long-ago", c(exp=NOW - 3600), "expired"),
    Case("nbf-beyond-leeway", c(nbf=NOW + 31), "not yet valid"),
    Case("nbf-false", c(nbf=False), "nbf not a number"),
    Case("nbf-null", c(nbf=None), "nbf not a number"),
    Case("iat-beyond-leeway", c(iat=NOW + 31), "issued in the future"),
    Case("iat-missing", c(iat=...), "iat missing or not a number"),
    Case("iat-true", c(iat=True), "iat missing or not a number"),
    Case("sub-missing", c(sub=...), "sub missing or not a string"),
    Case("sub-empty", c(sub=""), "sub missing or not a string"),
    Case("sub-number", c(sub=42), "sub missing or not a string"),
    Case("client-id-missing", c(client_id=...), "client_id missing or not a string"),
    Case(
        "client-id-list", c(client_id=["client-7"]), "client_id missing or not a string"
    ),
    Case("jti-missing", c(jti=...), "jti missing or not a string"),
    Case("scope-list", c(scope=["demo.read"]), "scope not a string"),
]


@pytest.mark.parametrize("case", [case.param() for case in CLAIM_CASES])
async def test_refused(case: Case, keys: Keys, verifier: Verifier) -> None:
    await check_refused(verifier, case.build(keys), case.detail)


@pytest.mark.parametrize(
    ("alg", "changes", "header_changes"),
    [
        pytest.param("ES256", {}, {}, id="es256"),
        pytest.param("RS256", {}, {}, id="rs256"),
        pytest.param("PS256", {}, {}, id="ps256"),
        pytest.param("EdDSA", {}, {}, id="eddsa"),
        pytest.param("ES256", {}, {"typ": "AT+JWT"}, id="typ-upper"),
        pytest.param("ES256", {}, {"typ": "application/at+jwt"}, id="typ-long"),
        pytest.param("ES256", {}, {"typ": "Application/At+JWT"}, id="typ-mixed"),
        pytest.param("ES256", {}, {"kid": ...}, id="no-kid-single-es-key"),
        pytest.param("ES256", {}, {"x-extra": {"a": [1]}}, id="unknown-header"),
        pytest.param("ES256", {"exp": NOW - 29}, {}, id="exp-inside-leeway"),
        pytest.param("ES256", {"exp": NOW + 0.5}, {}, id="exp-float"),
        pytest.param("ES256", {"nbf": NOW + 30}, {}, id="nbf-at-leeway-edge"),
        pytest.param("ES256", {"iat": NOW + 30}, {}, id="iat-at-leeway-edge"),
        pytest.param("ES256", {"aud": ["x", AUDIENCE]}, {}, id="aud-list"),
        pytest.param("ES256", {"scope": ...}, {}, id="no-scope"),
        pytest.param("ES256", {"exp": 10**30}, {}, id="exp-huge-int"),
    ],
)
async def test_accepted(
    alg: str,
    changes: dict[str, Any],
    header_changes: dict[str, Any],
    keys: Keys,
    verifier: Verifier,
) -> None:
    payload = claims(**changes)
    token = mint(keys[alg], payload, **header_changes)

    access_token = await verifier.verify(token)

    assert access_token.claims == payload
    assert access_token.subject == "user-42"
    assert access_token.client_id == "client-7"
    assert access_token.jwt_id == "jti-0001"
    assert access_token.expires_at == payload["exp"]
    expected_scopes = {"demo.read", "demo.write"} if "scope" in payload else set()
    assert access_token.scopes == frozenset(expected_scopes)
    aud = payload["aud"]
    assert access_token.audience == (aud if isinstance(aud, str) else tuple(aud))


async def test_access_token_is_read_only(keys: Keys, verifier: Verifier) -> None:
    access_token = await verifier.verify(mint(keys[ES]))

    assert isinstance(access_token, AccessToken)
    with pytest.raises(dataclasses.FrozenInstanceError):
        access_token.subject = "someone-else"  # type: ignore[misc]
    with pytest.raises(TypeError):
        access_token.claims["sub"] = "someone-else"  # type: ignore[index]


async def test_clock_moves_the_window(keys: Keys, jwks: dict[str, Any]) -> None:
    clock = FakeClock(NOW)
    verifier = Verifier.from_jwks(ISSUER, AUDIENCE, jwks, clock=clock, leeway=0)
    token = mint(keys[ES], claims(exp=NOW + 10, nbf=NOW + 5, iat=NOW))

    with pytest.raises(InvalidToken) as early:
        await verifier.verify(token)
    clock.advance(5)
    await verifier.verify(token)
    clock.advance(5)
    with pytest.raises(InvalidToken) as late:
        await verifier.verify(token)

    assert early.value.detail == "not yet valid"
    assert late.value.detail == "expired"


@pytest.mark.parametrize(
    ("scope", "required", "missing"),
    [
        pytest.param("demo.read demo.write", ("demo.read",), None, id="has-it"),
        pytest.param(
            "demo.read demo.write", ("demo.read", "demo.write"), None, id="has-both"
        ),
        pytest.param("demo.read", ("demo.admin",), {"demo.admin"}, id="lacks-one"),
        pytest.param(
            "demo.read",
            ("demo.read", "demo.admin", "x"),
            {"demo.admin", "x"},
            id="lacks-two",
        ),
        pytest.param(..., ("demo.read",), {"demo.read"}, id="no-scope-claim"),
        pytest.param(
            "demo.readx", ("demo.read",), {"demo.read"}, id="prefix-is-not-scope"
        ),
        pytest.param("", ("demo.read",), {"demo.read"}, id="empty-scope"),
    ],
)
async def test_required_scopes(
    scope: Any,
    required: tuple[str, ...],
    missing: set[str] | None,
    keys: Keys,
    verifier: Verifier,
) -> None:
    token = mint(keys[ES], claims(scope=scope))

    if missing is None:
        await verifier.verify(token, required)
        return
    with pytest.raises(InsufficientScope) as caught:
        await verifier.verify(token, required)

    assert caught.value.scopes == frozenset(missing)
    assert caught.value.status == 403
    assert caught.value.error == "insufficient_scope"
    assert caught.value.detail == "missing " + " ".join(sorted(missing))


async def test_required_scopes_as_one_string_is_a_mistake(
    keys: Keys, verifier: Verifier
) -> None:
    with pytest.raises(TypeError):
        await verifier.verify(mint(keys[ES]), "demo.read")  # type: ignore[arg-type]


async def test_no_kid_needs_exactly_one_key_for_the_alg(
    keys: Keys, jwks: dict[str, Any]
) -> None:
    second = make_key("ES256", "es-2")
    verifier = Verifier.from_jwks(
        ISSUER, AUDIENCE, {"keys": [*jwks["keys"], second.jwk]}, clock=FakeClock()
    )

    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(mint(keys[ES], kid=...))
    await verifier.verify(mint(second))
    await verifier.verify(mint(keys["RS256"], kid=...))

    assert caught.value.detail == "no kid, and no single ES256 key"


async def test_algorithm_allow_list_narrows_the_keys(
    keys: Keys, jwks: dict[str, Any]
) -> None:
    verifier = Verifier.from_jwks(
        ISSUER, AUDIENCE, jwks, algorithms=["EdDSA"], clock=FakeClock()
    )

    await verifier.verify(mint(keys["EdDSA"]))
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(mint(keys[ES]))

    assert caught.value.detail == "alg 'ES256' is not allowed"
