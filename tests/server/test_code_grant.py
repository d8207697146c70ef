"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3),
PKCE (RFC 7636 §4.6), ID tokens (OIDC Core §2, §3.1.3) and public clients,
over HTTP against a real server. Codes are put in its store directly."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from tests.server.delegation import (
    AUDIENCE,
    REDIRECT_URI,
    RelyingParty,
    create_person,
    introspect,
    issue_code,
    pkce,
    redeem,
    redeem_form,
    refresh,
    register,
    set_disabled,
    sign_in,
    verify_id_token,
)
from tests.server.helpers import (
    AUTH_FAILED,
    assert_error,
    assert_no_store,
    verify,
)
from tests.support import RunningServer, running

GRANT_INVALID = "The grant is invalid."
SHARED_POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="module")
def rp(server: RunningServer) -> RelyingParty:
    return register(server, "code-rp")


@pytest.fixture(scope="module")
def person(server: RunningServer) -> str:
    return create_person(server)


def test_a_code_is_exchanged_for_access_refresh_and_id_tokens(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    proof = pkce()
    nonce = secrets.token_urlsafe(16)
    auth_time = int(time.time()) - 30
    code = issue_code(
        server,
        rp.client_id,
        person,
        challenge=proof.challenge,
        nonce=nonce,
        auth_time=auth_time,
    )

    response = redeem(http, rp, code, proof.verifier)

    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert body.keys() == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
        "id_token",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "email offline_access openid profile read"
    assert body["refresh_token"].startswith("trt_")
    assert len(body["refresh_token"]) == 4 + 43

    header, access = verify(http, body["access_token"])
    assert header["typ"] == "at+jwt"
    assert access["sub"] == person
    assert access["client_id"] == rp.client_id
    assert access["aud"] == AUDIENCE
    assert access["scope"] == body["scope"]
    assert access["auth_time"] == auth_time

    id_header, id_claims = verify_id_token(http, body["id_token"], rp.client_id)
    assert id_header["alg"] == "RS256"
    assert id_header["typ"] == "JWT"
    assert id_claims["sub"] == person
    assert id_claims["aud"] == rp.client_id
    assert id_claims["azp"] == rp.client_id
    assert id_claims["nonce"] == nonce
    assert id_claims["auth_time"] == auth_time
    assert 0 < id_claims["exp"] - id_claims["iat"] <= 300
    # OIDC Core §3.1.3.6: the left half of the access token's SHA-256.
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert id_claims["at_hash"] == expected


def test_an_id_token_is_no_access_token(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    """Its typ is JWT, so introspection (RFC 9068 §4) refuses it."""
    id_token = sign_in(server, http, rp, person)["id_token"]

    assert introspect(http, server, rp.client_id, id_token) == {"active": False}


def test_without_openid_there_is_no_id_token(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    body = sign_in(server, http, rp, person, scope="read")

    assert "id_token" not in body
    assert body["scope"] == "read"


def test_a_client_without_the_refresh_grant_gets_no_refresh_token(
    server: RunningServer, http: httpx.Client, person: str
) -> None:
    no_refresh = register(
        server, "code-only", grant_types=frozenset({"authorization_code"})
    )

    body = sign_in(server, http, no_refresh, person)

    assert "refresh_token" not in body
    assert "id_token" in body


def test_a_client_without_audiences_gets_tokens_for_userinfo(
    server: RunningServer, http: httpx.Client, person: str
) -> None:
    sign_in_only = register(server, "sign-in-only", audiences=())

    body = sign_in(server, http, sign_in_only, person)

    _, access = verify(http, body["access_token"])
    assert access["aud"] == server.base_url + "/oauth2/userinfo"


def test_a_code_of_another_client_is_refused_and_used_up(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    thief = register(server, "code-thief")
    proof = pkce()
    code = issue_code(server, rp.client_id, person, challenge=proof.challenge)

    stolen = redeem(http, thief, code, proof.verifier)
    then = redeem(http, rp, code, proof.verifier)

    assert_error(stolen, 400, "invalid_grant", GRANT_INVALID)
    assert_error(then, 400, "invalid_grant", GRANT_INVALID)


@pytest.mark.parametrize(
    ("with_challenge", "verifier"),
    [
        pytest.param(True, "w" * 43, id="wrong verifier"),
        pytest.param(True, None, id="missing verifier"),
        pytest.param(False, "v" * 43, id="verifier without challenge (downgrade)"),
    ],
)
def test_pkce_failures_are_invalid_grant(
    server: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    with_challenge: bool,
    verifier: str | None,
) -> None:
    proof = pkce()
    challenge = proof.challenge if with_challenge else None
    code = issue_code(server, rp.client_id, person, challenge=challenge)

    response = redeem(http, rp, code, verifier)

    assert_error(response, 400, "invalid_grant", GRANT_INVALID)


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 42, id="42 characters"),
        pytest.param("a" * 129, id="129 characters"),
        pytest.param("a" * 42 + "+", id="reserved character"),
    ],
)
def test_a_malformed_verifier_is_invalid_request(
    server: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    verifier: str,
) -> None:
    code = issue_code(server, rp.client_id, person, challenge=pkce().challenge)

    response = redeem(http, rp, code, verifier)

    assert_error(response, 400, "invalid_request", "The code_verifier is malformed.")


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param(REDIRECT_URI + "/", id="trailing slash"),
        pytest.param(REDIRECT_URI.upper(), id="other case"),
        pytest.param(REDIRECT_URI + "?x=1", id="extra query"),
        pytest.param("https://evil.example.test/callback", id="other host"),
    ],
)
def test_the_redirect_uri_must_be_the_same_exactly(
    server: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    presented: str,
) -> None:
    proof = pkce()
    code = issue_code(server, rp.client_id, person, challenge=proof.challenge)

    response = redeem(http, rp, code, proof.verifier, redirect_uri=presented)

    assert_error(response, 400, "invalid_grant", GRANT_INVALID)


def test_the_redirect_uri_is_required_when_the_request_named_it(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    proof = pkce()
    code = issue_code(server, rp.client_id, person, challenge=proof.challenge)

    response = redeem(http, rp, code, proof.verifier, redirect_uri=None)

    assert_error(
        response, 400, "invalid_request", "The redirect_uri parameter is missing."
    )


@pytest.mark.parametrize(
    ("presented", "status"),
    [
        pytest.param(None, 200, id="left out"),
        pytest.param(REDIRECT_URI, 200, id="the same"),
        pytest.param(REDIRECT_URI + "/other", 400, id="another"),
    ],
)
def test_a_request_that_named_no_redirect_uri_may_leave_it_out(
    server: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    presented: str | None,
    status: int,
) -> None:
    """RFC 6749 §4.1.3: required only if the authorization request had it;
    given anyway, it must still be the one the code went to."""
    proof = pkce()
    code = issue_code(
        server,
        rp.client_id,
        person,
        challenge=proof.challenge,
        redirect_uri_given=False,
    )

    response = redeem(http, rp, code, proof.verifier, redirect_uri=presented)

    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, 400, "invalid_grant", GRANT_INVALID)


@pytest.mark.parametrize(
    ("code_of", "description"),
    [
        pytest.param("expired", GRANT_INVALID, id="expired"),
        pytest.param("unknown", GRANT_INVALID, id="never issued"),
    ],
)
def test_an_expired_or_unknown_code_is_refused(
    server: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    code_of: str,
    description: str,
) -> None:
    proof = pkce()
    code = (
        issue_code(
            server, rp.client_id, person, challenge=proof.challenge, expires_in=-1
        )
        if code_of == "expired"
        else secrets.token_urlsafe(32)
    )

    response = redeem(http, rp, code, proof.verifier)

    assert_error(response, 400, "invalid_grant", description)


def test_a_disabled_person_gets_nothing(
    server: RunningServer, http: httpx.Client, rp: RelyingParty
) -> None:
    person = create_person(server)
    proof = pkce()
    code = issue_code(server, rp.client_id, person, challenge=proof.challenge)
    set_disabled(server, person, True)

    response = redeem(http, rp, code, proof.verifier)

    assert_error(response, 400, "invalid_grant", GRANT_INVALID)


def test_a_second_redemption_revokes_what_the_first_issued(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    """RFC 6749 §10.5, RFC 9700 §4.2.3: a code used twice has leaked."""
    proof = pkce()
    code = issue_code(server, rp.client_id, person, challenge=proof.challenge)
    first = redeem(http, rp, code, proof.verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert introspect(http, server, rp.client_id, tokens["access_token"])["active"]

    second = redeem(http, rp, code, proof.verifier)

    assert_error(second, 400, "invalid_grant", GRANT_INVALID)
    assert introspect(http, server, rp.client_id, tokens["access_token"]) == {
        "active": False
    }
    assert_error(
        refresh(http, rp, tokens["refresh_token"]), 400, "invalid_grant", GRANT_INVALID
    )


async def _redeem_in_parallel(
    server: RunningServer, rp: RelyingParty, form: dict[str, str], count: int
) -> list[httpx.Response]:
    headers, fields = rp.credentials()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post("/oauth2/token", data={**fields, **form}, headers=headers)
                for _ in range(count)
            )
        )


def check_parallel_redemptions(server: RunningServer, http: httpx.Client) -> None:
    rp = register(server, "parallel-rp")
    person = create_person(server)
    proof = pkce()
    code = issue_code(server, rp.client_id, person, challenge=proof.challenge)

    responses = asyncio.run(
        _redeem_in_parallel(server, rp, redeem_form(code, proof.verifier), 20)
    )

    winners = [r for r in responses if r.status_code == 200]
    losers = [r for r in responses if r.status_code != 200]
    assert len(winners) == 1, [r.text for r in responses]
    for loser in losers:
        assert_error(loser, 400, "invalid_grant", GRANT_INVALID)
    tokens = winners[0].json()
    assert introspect(http, server, rp.client_id, tokens["access_token"]) == {
        "active": False
    }
    assert_error(
        refresh(http, rp, tokens["refresh_token"]), 400, "invalid_grant", GRANT_INVALID
    )


def test_twenty_parallel_redemptions_issue_one_token_set_then_revoke_it(
    server: RunningServer, http: httpx.Client
) -> None:
    check_parallel_redemptions(server, http)


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(f"{SHARED_POSTGRES}/test", timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def postgres_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of its own on a database of its own, on the shared
    PostgreSQL server; the database is dropped afterwards."""
    name = f"tessera_codes_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except OSError as error:
        pytest.skip(f"PostgreSQL at {SHARED_POSTGRES} is unreachable: {error}")
    try:
        yield from running(
            tmp_path / "tessera", TESSERA_DATABASE_URL=f"{SHARED_POSTGRES}/{name}"
        )
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_twenty_parallel_redemptions_on_postgresql(
    postgres_server: RunningServer,
) -> None:
    with httpx.Client(base_url=postgres_server.base_url) as http:
        check_parallel_redemptions(postgres_server, http)


# Public clients (RFC 6749 §2.1): no secret, so PKCE is the only proof.


@pytest.fixture(scope="module")
def spa(server: RunningServer) -> RelyingParty:
    return register(server, "spa", public=True)


def test_a_public_client_redeems_with_its_client_id_and_verifier(
    server: RunningServer, http: httpx.Client, spa: RelyingParty, person: str
) -> None:
    body = sign_in(server, http, spa, person)

    _, access = verify(http, body["access_token"])
    assert access["client_id"] == spa.client_id
    _, id_claims = verify_id_token(http, body["id_token"], spa.client_id)
    assert id_claims["sub"] == person
    rotated = refresh(http, spa, body["refresh_token"])
    assert rotated.status_code == 200, rotated.text


def test_a_public_clients_code_needs_a_challenge(
    server: RunningServer, http: httpx.Client, spa: RelyingParty, person: str
) -> None:
    code = issue_code(server, spa.client_id, person, challenge=None)

    response = redeem(http, spa, code, None)

    assert_error(response, 400, "invalid_grant", GRANT_INVALID)


def test_a_public_client_may_not_use_client_credentials(
    server: RunningServer, http: httpx.Client
) -> None:
    grants = frozenset({"authorization_code", "refresh_token", "client_credentials"})
    spa = register(server, "greedy-spa", public=True, grant_types=grants)

    response = spa.post(http, "/oauth2/token", grant_type="client_credentials")

    assert_error(
        response,
        400,
        "unauthorized_client",
        "The client may not use this grant type.",
    )


def test_a_public_client_may_not_introspect(
    server: RunningServer, http: httpx.Client, spa: RelyingParty, person: str
) -> None:
    body = sign_in(server, http, spa, person)

    response = spa.post(http, "/oauth2/introspect", token=body["access_token"])

    assert_error(response, 401, "invalid_client", AUTH_FAILED)


def test_a_confidential_client_must_authenticate(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    proof = pkce()
    code = issue_code(server, rp.client_id, person, challenge=proof.challenge)

    response = http.post(
        "/oauth2/token",
        data={"client_id": rp.client_id, **redeem_form(code, proof.verifier)},
    )

    assert_error(response, 401, "invalid_client", AUTH_FAILED)
    # Refused before the code was looked at: it still works.
    assert redeem(http, rp, code, proof.verifier).status_code == 200


def test_id_token_signature_is_rs256_whatever_the_default(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    """The server signs access tokens with ES256 by default; ID tokens need
    the one algorithm every relying party must accept."""
    body = sign_in(server, http, rp, person)

    assert jwt.get_unverified_header(body["access_token"])["alg"] == "ES256"
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"
