"""Key discovery against a stand-in issuer over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from tessera.verify import InvalidToken, TemporarilyUnavailable, Verifier
from tessera.verify._discovery import cache_lifetime

from .conftest import (
    AUDIENCE,
    FakeClock,
    IssuerState,
    Keys,
    SigningKey,
    claims,
    closed_port_url,
    make_key,
    mint,
)


def token_for(issuer: IssuerState, key: SigningKey, **header: Any) -> str:
    return mint(key, claims(iss=issuer.base), **header)


async def test_discovers_metadata_then_keys_once(
    issuer: IssuerState, discovering: Verifier, keys: Keys
) -> None:
    for alg in ("ES256", "RS256", "ES256"):
        access_token = await discovering.verify(token_for(issuer, keys[alg]))
        assert access_token.claims["iss"] == issuer.base

    assert issuer.hits == {"oauth-metadata": 1, "jwks": 1}


async def test_falls_back_to_openid_configuration(
    issuer: IssuerState, discovering: Verifier, keys: Keys
) -> None:
    issuer.oauth_metadata = False

    await discovering.verify(token_for(issuer, keys["ES256"]))

    assert issuer.hits == {"oauth-metadata": 1, "openid-metadata": 1, "jwks": 1}


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        pytest.param(
            {"metadata_issuer": "https://evil.example"},
            "issuer in metadata differs from the configured one",
            id="issuer-mismatch",
        ),
        pytest.param(
            {"oauth_metadata": False, "openid_metadata": False},
            "/.well-known/openid-configuration answered 404",
            id="no-metadata",
        ),
        pytest.param(
            {"jwks_uri": "http://keys.example/jwks"},
            "jwks_uri must be https, or http on a loopback host",
            id="jwks-uri-plain-http",
        ),
        pytest.param({"jwks_status": 500}, "/oauth2/jwks answered 500", id="jwks-500"),
        pytest.param(
            {"jwks_body": b"{not json"}, "JWK Set is not JSON", id="jwks-junk"
        ),
        pytest.param(
            {"jwks_body": b'{"keys": []}'},
            "JWK Set: no usable signing key",
            id="jwks-empty",
        ),
        pytest.param(
            {"jwks_body": json.dumps({"keys": [], "pad": "x" * 300_000}).encode()},
            "response larger than 262144 bytes",
            id="jwks-too-large",
        ),
    ],
)
async def test_unusable_issuer_is_temporarily_unavailable(
    change: dict[str, Any],
    detail: str,
    issuer: IssuerState,
    discovering: Verifier,
    keys: Keys,
) -> None:
    for name, value in change.items():
        setattr(issuer, name, value)

    with pytest.raises(TemporarilyUnavailable) as caught:
        await discovering.verify(token_for(issuer, keys["ES256"]))

    assert caught.value.status == 503
    assert caught.value.error == "temporarily_unavailable"
    assert detail in caught.value.detail


async def test_unreachable_issuer_is_temporarily_unavailable(
    keys: Keys, clock: FakeClock
) -> None:
    base = closed_port_url()
    async with Verifier(base, AUDIENCE, clock=clock) as verifier:
        with pytest.raises(TemporarilyUnavailable) as caught:
            await verifier.verify(mint(keys["ES256"], claims(iss=base)))

    assert caught.value.detail.startswith("GET " + base)
    assert "ConnectError" in caught.value.detail


async def test_unknown_kid_refetches_at_most_once_per_interval(
    issuer: IssuerState, discovering: Verifier, keys: Keys, clock: FakeClock
) -> None:
    async def refuse(kid: str) -> None:
        with pytest.raises(InvalidToken) as caught:
            await discovering.verify(token_for(issuer, keys["ES256"], kid=kid))
        assert caught.value.detail == f"unknown kid '{kid}'"

    await discovering.verify(token_for(issuer, keys["ES256"]))
    await refuse("forged-1")
    assert issuer.hits["jwks"] == 1

    clock.advance(30)
    await refuse("forged-2")
    await refuse("forged-3")
    assert issuer.hits["jwks"] == 2

    clock.advance(29)
    await refuse("forged-4")
    assert issuer.hits["jwks"] == 2

    clock.advance(1)
    await refuse("forged-5")
    assert issuer.hits == {"oauth-metadata": 1, "jwks": 3}


async def test_rotation_new_key_is_found_by_refetch(
    issuer: IssuerState, discovering: Verifier, keys: Keys, clock: FakeClock
) -> None:
    old_token = mint(keys["ES256"], claims(iss=issuer.base, exp=clock.now + 10_000))
    await discovering.verify(old_token)
    new_key = make_key("ES256", "es-2")
    issuer.keys = [keys["ES256"], new_key]
    clock.advance(30)

    await discovering.verify(token_for(issuer, new_key))
    assert issuer.hits["jwks"] == 2

    issuer.keys = [new_key]
    clock.advance(299)
    await discovering.verify(old_token)
    assert issuer.hits["jwks"] == 2
    clock.advance(1)
    with pytest.raises(InvalidToken) as caught:
        await discovering.verify(old_token)

    assert caught.value.detail == "unknown kid 'es-1'"
    assert issuer.hits["jwks"] == 3


@pytest.mark.parametrize(
    ("cache_control", "lifetime"),
    [
        pytest.param("public, max-age=120", 120, id="max-age"),
        pytest.param("max-age=5", 60, id="raised-to-minimum"),
        pytest.param("max-age=99999999", 86_400, id="lowered-to-maximum"),
        pytest.param(None, 300, id="absent"),
        pytest.param("no-store", 60, id="no-store"),
        pytest.param("max-age=abc", 300, id="junk"),
    ],
)
async def test_key_set_is_cached_as_cache_control_says(
    cache_control: str | None,
    lifetime: int,
    issuer: IssuerState,
    discovering: Verifier,
    keys: Keys,
    clock: FakeClock,
) -> None:
    issuer.cache_control = cache_control
    token = mint(keys["ES256"], claims(iss=issuer.base, exp=clock.now + 100_000))

    await discovering.verify(token)
    clock.advance(lifetime - 1)
    await discovering.verify(token)
    assert issuer.hits["jwks"] == 1

    clock.advance(1)
    await discovering.verify(token)
    assert issuer.hits["jwks"] == 2


@pytest.mark.parametrize(
    ("header", "lifetime"),
    [
        pytest.param("public, max-age=600", 600.0, id="public-max-age"),
        pytest.param('max-age="600"', 600.0, id="quoted"),
        pytest.param("MAX-AGE=600", 600.0, id="upper-case"),
        pytest.param("max-age=600, no-cache", 60.0, id="no-cache-wins"),
        pytest.param("max-age=-1", 300.0, id="negative"),
        pytest.param("max-age=６００", 300.0, id="non-ascii-digits"),
        pytest.param("", 300.0, id="empty"),
    ],
)
def test_cache_lifetime(header: str, lifetime: float) -> None:
    assert cache_lifetime(header) == lifetime


async def test_concurrent_callers_share_one_fetch(
    issuer: IssuerState, discovering: Verifier, keys: Keys
) -> None:
    issuer.jwks_delay = 0.2
    tokens = [token_for(issuer, keys[alg]) for alg in ("ES256", "RS256") * 10]

    results = await asyncio.gather(*(discovering.verify(t) for t in tokens))

    assert len(results) == 20
    assert issuer.hits == {"oauth-metadata": 1, "jwks": 1}


async def test_concurrent_callers_share_one_failure(
    issuer: IssuerState, discovering: Verifier, keys: Keys
) -> None:
    issuer.jwks_delay = 0.2
    issuer.jwks_status = 503
    token = token_for(issuer, keys["ES256"])

    results = await asyncio.gather(
        *(discovering.verify(token) for _ in range(10)), return_exceptions=True
    )

    assert all(isinstance(result, TemporarilyUnavailable) for result in results)
    assert issuer.hits["jwks"] == 1


async def test_failed_refresh_keeps_serving_cached_keys(
    issuer: IssuerState,
    discovering: Verifier,
    keys: Keys,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = mint(keys["ES256"], claims(iss=issuer.base, exp=clock.now + 10_000))
    await discovering.verify(token)
    issuer.jwks_status = 500
    clock.advance(300)

    with caplog.at_level(logging.WARNING, logger="tessera.verify"):
        await discovering.verify(token)
    assert issuer.hits["jwks"] == 2
    assert "cannot load issuer keys" in caplog.text

    # The failure is not retried on every request, only after the interval,
    # and the metadata is read again in case jwks_uri moved.
    clock.advance(29)
    await discovering.verify(token)
    assert issuer.hits["jwks"] == 2
    clock.advance(1)
    issuer.jwks_status = 200
    await discovering.verify(token)
    assert issuer.hits == {"oauth-metadata": 2, "jwks": 3}


async def test_failed_first_fetch_is_retried_on_next_request(
    issuer: IssuerState, discovering: Verifier, keys: Keys
) -> None:
    issuer.jwks_status = 500
    token = token_for(issuer, keys["ES256"])
    with pytest.raises(TemporarilyUnavailable):
        await discovering.verify(token)

    issuer.jwks_status = 200
    await discovering.verify(token)

    assert issuer.hits["jwks"] == 2


async def test_no_url_from_a_token_is_ever_fetched(
    issuer: IssuerState, discovering: Verifier, keys: Keys
) -> None:
    attacker = make_key("ES256", "attacker")
    jku = f"{issuer.base}/attacker/jwks"
    tokens = [
        mint(attacker, claims(iss=issuer.base), jku=jku),
        mint(attacker, claims(iss=issuer.base), jku=jku, kid=...),
        mint(attacker, claims(iss=issuer.base), x5u=jku),
        mint(attacker, claims(iss=issuer.base), jwk=attacker.jwk),
        mint(attacker, claims(iss=jku), iss=jku),
    ]

    for token in tokens:
        with pytest.raises(InvalidToken):
            await discovering.verify(token)

    assert issuer.hits["attacker"] == 0


async def test_cancelled_fetch_leaves_waiters_to_fetch_for_themselves(
    issuer: IssuerState, discovering: Verifier, keys: Keys
) -> None:
    issuer.jwks_delay = 0.5
    token = token_for(issuer, keys["ES256"])
    first = asyncio.create_task(discovering.verify(token))
    async with asyncio.timeout(5):
        while issuer.hits["jwks"] == 0:
            await asyncio.sleep(0.01)
    second = asyncio.create_task(discovering.verify(token))
    await asyncio.sleep(0.05)

    first.cancel()
    access_token = await second

    assert access_token.subject == "user-42"
    assert first.cancelled()
    assert issuer.hits["jwks"] == 2
