"""Revocation through introspection, against the stand-in issuer."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from tessera.demo.api import build_demo_api
from tessera.verify import (
    Introspection,
    InvalidToken,
    TemporarilyUnavailable,
    Verifier,
)

from .conftest import (
    AUDIENCE,
    ISSUER,
    FakeClock,
    IssuerState,
    Keys,
    claims,
    closed_port_url,
    mint,
)

CLIENT_ID = "rs:api one"
CLIENT_SECRET = "s3cret/+&=%é"


@pytest.fixture
async def revoking(issuer: IssuerState, clock: FakeClock) -> AsyncIterator[Verifier]:
    """A discovering verifier that asks the issuer about every token."""
    introspection = Introspection(CLIENT_ID, CLIENT_SECRET, cache_seconds=5)
    async with Verifier(
        issuer.base, AUDIENCE, clock=clock, introspection=introspection
    ) as verifier:
        yield verifier


def token_for(issuer: IssuerState, keys: Keys, **changes: Any) -> str:
    return mint(keys["ES256"], claims(iss=issuer.base, **changes))


async def test_active_token_is_accepted(
    issuer: IssuerState, revoking: Verifier, keys: Keys
) -> None:
    token = token_for(issuer, keys)

    access_token = await revoking.verify(token)

    assert access_token.client_id == "client-7"
    [request] = issuer.introspection_requests
    assert request["form"] == {"token": token, "token_type_hint": "access_token"}
    assert request["content_type"] == "application/x-www-form-urlencoded"


async def test_credentials_are_form_encoded_before_base64(
    issuer: IssuerState, revoking: Verifier, keys: Keys
) -> None:
    await revoking.verify(token_for(issuer, keys))

    [request] = issuer.introspection_requests
    scheme, encoded = request["authorization"].split(" ")
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    assert scheme == "Basic"
    assert user == "rs%3Aapi+one"
    assert (unquote_plus(user), unquote_plus(password)) == (CLIENT_ID, CLIENT_SECRET)


@pytest.mark.parametrize(
    "active",
    [
        pytest.param(False, id="false"),
        pytest.param("true", id="string-true"),
        pytest.param(1, id="one"),
        pytest.param(None, id="null"),
    ],
)
async def test_inactive_token_is_refused(
    active: Any, issuer: IssuerState, revoking: Verifier, keys: Keys
) -> None:
    issuer.active = active

    with pytest.raises(InvalidToken) as caught:
        await revoking.verify(token_for(issuer, keys))

    assert caught.value.detail == "revoked or inactive"
    assert caught.value.description == "The access token is invalid."


async def test_positive_answers_are_cached_briefly(
    issuer: IssuerState, revoking: Verifier, keys: Keys, clock: FakeClock
) -> None:
    token = token_for(issuer, keys)

    await revoking.verify(token)
    clock.advance(4)
    await revoking.verify(token)
    assert issuer.hits["introspect"] == 1

    clock.advance(1)
    issuer.active = False
    with pytest.raises(InvalidToken):
        await revoking.verify(token)
    assert issuer.hits["introspect"] == 2


async def test_cache_ends_when_the_token_expires(
    issuer: IssuerState, revoking: Verifier, keys: Keys, clock: FakeClock
) -> None:
    token = token_for(issuer, keys, exp=int(clock.now) + 2)

    await revoking.verify(token)
    clock.advance(2)
    await revoking.verify(token)  # still inside the leeway

    assert issuer.hits["introspect"] == 2


async def test_negative_answers_are_not_cached(
    issuer: IssuerState, revoking: Verifier, keys: Keys
) -> None:
    issuer.active = False
    token = token_for(issuer, keys)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await revoking.verify(token)
    issuer.active = True

    await revoking.verify(token)

    assert issuer.hits["introspect"] == 3


async def test_local_checks_come_first(
    issuer: IssuerState, revoking: Verifier, keys: Keys
) -> None:
    with pytest.raises(InvalidToken) as caught:
        await revoking.verify(token_for(issuer, keys, aud="https://other.example"))

    assert caught.value.detail == "wrong audience"
    assert issuer.hits["introspect"] == 0


@pytest.mark.parametrize("status", [401, 500, 503])
async def test_failing_endpoint_fails_closed(
    status: int, issuer: IssuerState, revoking: Verifier, keys: Keys
) -> None:
    issuer.introspection_status = status

    with pytest.raises(TemporarilyUnavailable) as caught:
        await revoking.verify(token_for(issuer, keys))

    assert caught.value.detail == f"introspection: introspection answered {status}"
    assert caught.value.status == 503


async def test_unreachable_endpoint_fails_closed(
    keys: Keys, jwks: dict[str, Any], clock: FakeClock
) -> None:
    endpoint = closed_port_url() + "/oauth2/introspect"
    introspection = Introspection("rs", "secret", endpoint=endpoint)
    async with Verifier.from_jwks(
        ISSUER, AUDIENCE, jwks, clock=clock, introspection=introspection
    ) as verifier:
        with pytest.raises(TemporarilyUnavailable) as caught:
            await verifier.verify(mint(keys["ES256"]))

    assert caught.value.detail == f"introspection: POST {endpoint}: ConnectError"


async def test_configured_endpoint_wins_over_metadata(
    issuer: IssuerState, keys: Keys, jwks: dict[str, Any], clock: FakeClock
) -> None:
    introspection = Introspection(
        "rs", "secret", endpoint=f"{issuer.base}/oauth2/introspect"
    )
    async with Verifier.from_jwks(
        ISSUER, AUDIENCE, jwks, clock=clock, introspection=introspection
    ) as verifier:
        await verifier.verify(mint(keys["ES256"]))

    assert issuer.hits == {"introspect": 1}


def test_fixed_keys_need_an_explicit_endpoint(jwks: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="introspection needs an endpoint"):
        Verifier.from_jwks(
            ISSUER, AUDIENCE, jwks, introspection=Introspection("rs", "secret")
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"cache_seconds": -1}, "cache_seconds", id="negative-cache"),
        pytest.param({"cache_seconds": 3600}, "cache_seconds", id="long-cache"),
        pytest.param({"max_cached": 0}, "max_cached", id="no-room"),
        pytest.param({"endpoint": "http://issuer.example/i"}, "https", id="plain-http"),
    ],
)
def test_unsafe_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Introspection("rs", "secret", **options)


def test_repr_hides_the_secret() -> None:
    introspection = Introspection("rs", "hunter2", endpoint="https://i.example/i")

    assert "hunter2" not in repr(introspection)
    assert repr(introspection) == "Introspection(endpoint='https://i.example/i')"


async def test_cache_is_bounded(
    issuer: IssuerState, keys: Keys, clock: FakeClock
) -> None:
    introspection = Introspection("rs", "secret", max_cached=2)
    tokens = [token_for(issuer, keys, jti=f"jti-{n}") for n in range(3)]
    async with Verifier(
        issuer.base, AUDIENCE, clock=clock, introspection=introspection
    ) as verifier:
        for token in tokens:
            await verifier.verify(token)
        await verifier.verify(tokens[2])
        await verifier.verify(tokens[0])

    # The oldest answer made room for the third, so the first is asked again.
    assert issuer.hits["introspect"] == 4


@pytest.mark.parametrize(
    ("active", "introspection_status", "status", "error"),
    [
        pytest.param(True, 200, 200, None, id="active-200"),
        pytest.param(False, 200, 401, "invalid_token", id="inactive-401"),
        pytest.param(True, 500, 503, "temporarily_unavailable", id="down-503"),
    ],
)
async def test_through_the_demo_api(
    active: bool,
    introspection_status: int,
    status: int,
    error: str | None,
    issuer: IssuerState,
    revoking: Verifier,
    keys: Keys,
) -> None:
    issuer.active = active
    issuer.introspection_status = introspection_status
    transport = httpx.ASGITransport(app=build_demo_api(revoking))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/hello", headers={"Authorization": f"Bearer {token_for(issuer, keys)}"}
        )

    assert response.status_code == status
    assert response.json().get("error") == error
