"""The relying party in ``tessera.demo.oidc_client``: PKCE, state, nonce,
discovery and every ID-token rule, with keys generated here and served as the
issuer's JWKS from an in-process transport; then the whole flow against a
real ``tessera serve``, its login and consent forms posted without a
browser."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tessera.demo.oidc_client import (
    Client,
    DiscoveryError,
    IDTokenError,
    OIDCError,
    ProviderMetadata,
    TokenError,
    TokenSet,
    decode_claims_unverified,
    discover,
    pkce_challenge,
)
from tests.support import RunningServer

ISSUER = "https://op.example.test"
CLIENT_ID = "dashboard"
REDIRECT_URI = "http://127.0.0.1:8200/callback"
NOW = 1_800_000_000.0
NONCE = "n-0S6_WzA2Mj"
ACCESS_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJhdC0xIn0.c2ln"
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth2/authorize",
    "token_endpoint": f"{ISSUER}/oauth2/token",
    "jwks_uri": f"{ISSUER}/oauth2/jwks",
    "userinfo_endpoint": f"{ISSUER}/oauth2/userinfo",
    "end_session_endpoint": f"{ISSUER}/oauth2/logout",
    "code_challenge_methods_supported": ["S256"],
    "id_token_signing_alg_values_supported": ["RS256"],
}
METADATA = ProviderMetadata.parse(DISCOVERY, ISSUER)
SIGNING_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})


def at_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "exp": int(NOW) + 300,
        "iat": int(NOW),
        "nonce": NONCE,
        "at_hash": at_hash(ACCESS_TOKEN),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(
    payload: dict[str, Any],
    key: Any = SIGNING_KEY,
    **header: Any,
) -> str:
    full = {"alg": "RS256", "kid": "k1", "typ": "JWT", **header}
    full = {name: value for name, value in full.items() if value is not None}
    return jwt.encode(full, payload, key, algorithms=[full["alg"]])


def unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


class Issuer:
    """The issuer's HTTP side as this module needs it: the JWKS, whose keys
    a test may change, and a token endpoint answering with canned bodies."""

    def __init__(self) -> None:
        self.keys: list[Any] = [SIGNING_KEY]
        self.jwks_fetches = 0
        self.token_answers: list[tuple[int, dict[str, Any]]] = []
        self.token_requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/jwks":
            self.jwks_fetches += 1
            keys = [key.as_dict(private=False) for key in self.keys]
            return httpx.Response(200, json={"keys": keys})
        if request.url.path == "/oauth2/token":
            self.token_requests.append(request)
            status, body = self.token_answers.pop(0)
            return httpx.Response(status, json=body)
        return httpx.Response(404)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(issuer: Issuer, clock: Clock) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(issuer)) as http:
        yield Client(METADATA, CLIENT_ID, REDIRECT_URI, http, clock=clock)


# PKCE, state and nonce.


def test_pkce_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def test_authorization_request_carries_pkce_state_and_nonce(
    client: Client,
) -> None:
    pending = client.begin("openid profile")

    url = urlsplit(pending.url)
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{ISSUER}/oauth2/authorize"
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": pkce_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
    }
    assert 43 <= len(pending.code_verifier) <= 128
    assert pending.code_verifier not in pending.url


async def test_each_request_has_fresh_secrets(client: Client) -> None:
    first, second = client.begin("openid"), client.begin("openid")

    assert len({first.state, second.state, first.nonce, second.nonce}) == 4
    assert first.code_verifier != second.code_verifier
    assert len(first.state) >= 43


@pytest.mark.parametrize("state", [None, "", "forged"], ids=["none", "empty", "other"])
async def test_callback_with_another_state_is_refused(
    client: Client, state: str | None
) -> None:
    pending = client.begin("openid")

    with pytest.raises(OIDCError, match="does not match"):
        Client.check_state(pending, state)


async def test_callback_with_its_own_state_passes(client: Client) -> None:
    pending = client.begin("openid")

    Client.check_state(pending, pending.state)


# The ID token (OIDC Core §3.1.3.7).


async def test_valid_id_token_gives_its_claims(client: Client) -> None:
    verified = await client.verify_id_token(
        sign(claims()), nonce=NONCE, access_token=ACCESS_TOKEN
    )

    assert verified == claims()


async def test_id_token_without_at_hash_passes(client: Client) -> None:
    token = sign(claims(at_hash=None))

    verified = await client.verify_id_token(
        token, nonce=NONCE, access_token=ACCESS_TOKEN
    )

    assert "at_hash" not in verified


async def test_several_audiences_with_azp_naming_this_client_pass(
    client: Client,
) -> None:
    token = sign(claims(aud=[CLIENT_ID, "api"], azp=CLIENT_ID))

    await client.verify_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)


BAD_CLAIMS = [
    pytest.param(claims(iss="https://evil.example.test"), "another issuer", id="iss"),
    pytest.param(claims(iss=None), "another issuer", id="no-iss"),
    pytest.param(claims(aud="someone-else"), "not for this client", id="aud"),
    pytest.param(claims(aud=None), "not for this client", id="no-aud"),
    pytest.param(claims(aud=[CLIENT_ID, "api"]), "another party", id="aud-no-azp"),
    pytest.param(claims(azp="someone-else"), "another party", id="azp"),
    pytest.param(claims(exp=int(NOW) - 61), "expired", id="expired"),
    pytest.param(claims(exp=None), "lacks exp", id="no-exp"),
    pytest.param(claims(exp="soon"), "lacks exp", id="exp-string"),
    pytest.param(claims(iat=None), "lacks exp or iat", id="no-iat"),
    pytest.param(claims(iat=int(NOW) + 120), "in the future", id="iat-future"),
    pytest.param(claims(sub=None), "no subject", id="no-sub"),
    pytest.param(claims(sub=""), "no subject", id="empty-sub"),
    pytest.param(claims(nonce=None), "nonce", id="no-nonce"),
    pytest.param(claims(nonce="replayed"), "nonce", id="nonce"),
    pytest.param(claims(at_hash=at_hash("other")), "at_hash", id="at-hash"),
]


@pytest.mark.parametrize(("payload", "message"), BAD_CLAIMS)
async def test_id_token_with_bad_claim_is_refused(
    client: Client, payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(IDTokenError, match=message):
        await client.verify_id_token(
            sign(payload), nonce=NONCE, access_token=ACCESS_TOKEN
        )


async def test_leeway_tolerates_a_minute_of_clock_skew(client: Client) -> None:
    token = sign(claims(exp=int(NOW) - 59, iat=int(NOW) + 59))

    await client.verify_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)


async def test_forged_signature_is_refused(client: Client) -> None:
    token = sign(claims(), key=OTHER_KEY)

    with pytest.raises(IDTokenError, match="signature"):
        await client.verify_id_token(token, nonce=NONCE, access_token=ACCESS_TOKEN)


async def test_tampered_payload_is_refused(client: Client) -> None:
    header, _, signature = sign(claims()).split(".")
    evil = sign(claims(sub="admin")).split(".")[1]

    with pytest.raises(IDTokenError, match="signature"):
        await client.verify_id_token(
            f"{header}.{evil}.{signature}", nonce=NONCE, access_token=None
        )


async def test_unsigned_token_is_refused(client: Client) -> None:
    with pytest.raises(IDTokenError, match="'none'"):
        await client.verify_id_token(unsigned(claims()), nonce=NONCE, access_token=None)


async def test_algorithm_the_issuer_does_not_advertise_is_refused(
    client: Client, issuer: Issuer
) -> None:
    ec_key = ECKey.generate_key("P-256", parameters={"kid": "e1", "use": "sig"})
    issuer.keys.append(ec_key)
    token = sign(claims(), key=ec_key, alg="ES256", kid="e1")

    with pytest.raises(IDTokenError, match="ES256"):
        await client.verify_id_token(token, nonce=NONCE, access_token=None)


async def test_access_token_passed_off_as_id_token_is_refused(
    client: Client,
) -> None:
    token = sign(claims(), typ="at+jwt")

    with pytest.raises(IDTokenError, match="type"):
        await client.verify_id_token(token, nonce=NONCE, access_token=None)


async def test_oversized_token_is_refused_before_any_key_fetch(
    client: Client, issuer: Issuer
) -> None:
    token = sign(claims(padding="x" * 20_000))

    with pytest.raises(IDTokenError, match="too large"):
        await client.verify_id_token(token, nonce=NONCE, access_token=None)
    assert issuer.jwks_fetches == 0


async def test_not_a_jwt_is_refused(client: Client) -> None:
    with pytest.raises(IDTokenError, match="not a signed JWT"):
        await client.verify_id_token("opaque", nonce=NONCE, access_token=None)


async def test_rotated_key_is_fetched_once(
    client: Client, issuer: Issuer, clock: Clock
) -> None:
    await client.verify_id_token(sign(claims()), nonce=NONCE, access_token=None)
    new_key = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig"})
    issuer.keys = [new_key]
    clock.now += 30

    token = sign(claims(iat=int(clock.now)), key=new_key, kid="k2")
    await client.verify_id_token(token, nonce=NONCE, access_token=None)

    assert issuer.jwks_fetches == 2


async def test_unknown_kids_do_not_hammer_the_jwks(
    client: Client, issuer: Issuer
) -> None:
    await client.verify_id_token(sign(claims()), nonce=NONCE, access_token=None)

    for number in range(5):
        with pytest.raises(IDTokenError, match="not in the issuer's JWKS"):
            await client.verify_id_token(
                sign(claims(), kid=f"forged-{number}"), nonce=NONCE, access_token=None
            )

    assert issuer.jwks_fetches == 1


# Token responses.


def token_body(**changes: Any) -> dict[str, Any]:
    body = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_token": "rt-1",
        "id_token": sign(claims()),
        "scope": "openid profile",
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not None}


async def test_public_client_exchanges_the_code_with_its_verifier(
    client: Client, issuer: Issuer
) -> None:
    pending = dataclasses.replace(client.begin("openid"), nonce=NONCE)
    issuer.token_answers.append((200, token_body()))

    tokens = await client.exchange("the-code", pending)

    request = issuer.token_requests[0]
    assert "authorization" not in request.headers
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "redirect_uri": [REDIRECT_URI],
        "code_verifier": [pending.code_verifier],
        "client_id": [CLIENT_ID],
    }
    assert tokens.refresh_token == "rt-1"
    assert tokens.expires_at == NOW + 900
    assert tokens.id_claims["sub"] == "user-1"


async def test_confidential_client_authenticates_with_basic(
    issuer: Issuer, clock: Clock
) -> None:
    transport = httpx.MockTransport(issuer)
    async with httpx.AsyncClient(transport=transport) as http:
        client = Client(
            METADATA, "dash board", REDIRECT_URI, http, client_secret="s:1", clock=clock
        )
        issuer.token_answers.append((400, {"error": "invalid_grant"}))
        with pytest.raises(TokenError):
            await client.exchange("code", client.begin("openid"))

    request = issuer.token_requests[0]
    # Both halves form-urlencoded before base64 (RFC 6749 §2.3.1).
    expected = base64.b64encode(b"dash%20board:s%3A1").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert "client_id" not in parse_qs(request.content.decode())


async def test_token_error_carries_the_rfc_error(
    client: Client, issuer: Issuer
) -> None:
    issuer.token_answers.append(
        (400, {"error": "invalid_grant", "error_description": "code used"})
    )

    with pytest.raises(TokenError) as caught:
        await client.exchange("code", client.begin("openid"))

    assert (caught.value.error, caught.value.description) == (
        "invalid_grant",
        "code used",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (token_body(id_token=None), "no id_token"),
        (token_body(access_token=None), "no token"),
        (token_body(token_type="DPoP"), "not Bearer"),
    ],
    ids=["no-id-token", "no-access-token", "token-type"],
)
async def test_unusable_token_response_is_refused(
    client: Client, issuer: Issuer, body: dict[str, Any], message: str
) -> None:
    issuer.token_answers.append((200, body))

    with pytest.raises(TokenError, match=message):
        await client.exchange("code", client.begin("openid"))


def held_tokens() -> TokenSet:
    return TokenSet(
        access_token=ACCESS_TOKEN,
        expires_at=NOW + 900,
        refresh_token="rt-1",
        id_token=sign(claims()),
        id_claims=claims(),
        scope="openid",
    )


async def test_refresh_keeps_the_rotated_refresh_token(
    client: Client, issuer: Issuer
) -> None:
    issuer.token_answers.append((200, token_body(refresh_token="rt-2")))

    tokens = await client.refresh(held_tokens(), NONCE)

    assert parse_qs(issuer.token_requests[0].content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["rt-1"],
        "client_id": [CLIENT_ID],
    }
    assert tokens.refresh_token == "rt-2"


async def test_refresh_without_rotation_keeps_the_old_refresh_token(
    client: Client, issuer: Issuer
) -> None:
    issuer.token_answers.append((200, token_body(refresh_token=None, id_token=None)))

    tokens = await client.refresh(held_tokens(), NONCE)

    assert tokens.refresh_token == "rt-1"
    assert tokens.id_claims == claims()


async def test_refreshed_id_token_for_someone_else_is_refused(
    client: Client, issuer: Issuer
) -> None:
    issuer.token_answers.append((200, token_body(id_token=sign(claims(sub="user-2")))))

    with pytest.raises(IDTokenError, match="someone else"):
        await client.refresh(held_tokens(), NONCE)


async def test_refreshed_id_token_with_another_nonce_is_refused(
    client: Client, issuer: Issuer
) -> None:
    issuer.token_answers.append((200, token_body(id_token=sign(claims(nonce="other")))))

    with pytest.raises(IDTokenError, match="nonce"):
        await client.refresh(held_tokens(), NONCE)


# Discovery and logout.


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuer": "https://evil.example.test"}, "names issuer"),
        ({"token_endpoint": None}, "token_endpoint"),
        ({"jwks_uri": "file:///etc/passwd"}, "jwks_uri"),
        ({"code_challenge_methods_supported": ["plain"]}, "S256"),
        ({"id_token_signing_alg_values_supported": ["HS256", "none"]}, "algorithm"),
    ],
    ids=["issuer", "no-token-endpoint", "jwks-scheme", "no-s256", "algs"],
)
def test_unusable_discovery_document_is_refused(
    changes: dict[str, Any], message: str
) -> None:
    document = {**DISCOVERY, **changes}

    with pytest.raises(DiscoveryError, match=message):
        ProviderMetadata.parse(document, ISSUER)


def test_issuer_without_advertised_algorithms_means_rs256() -> None:
    document = {**DISCOVERY}
    del document["id_token_signing_alg_values_supported"]

    assert ProviderMetadata.parse(document, ISSUER).id_token_algorithms == ("RS256",)


async def test_end_session_url_names_the_session_and_the_way_back(
    client: Client,
) -> None:
    url = client.end_session("the-id-token", "http://127.0.0.1:8200/signed-out", "s1")

    assert url is not None
    split = urlsplit(url)
    assert f"{split.scheme}://{split.netloc}{split.path}" == f"{ISSUER}/oauth2/logout"
    assert parse_qs(split.query) == {
        "id_token_hint": ["the-id-token"],
        "client_id": [CLIENT_ID],
        "post_logout_redirect_uri": ["http://127.0.0.1:8200/signed-out"],
        "state": ["s1"],
    }


def test_unverified_decoding_is_for_jwts_only() -> None:
    assert decode_claims_unverified(sign({"jti": "a"})) == {"jti": "a"}
    assert decode_claims_unverified("opaque-token") is None
    assert decode_claims_unverified("a.!!!.c") is None


# Against a real Tessera.

RP_ID = "oidc-client-test"
RP_REDIRECT = "http://127.0.0.1:9/callback"
RP_USER, RP_PASSWORD = "oidc-client-user", "a passphrase for the test"


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, page
    return match.group(1)


def register(server: RunningServer) -> None:
    """The user and the public client, through the operator CLI."""
    for args, stdin in (
        (["users", "create", RP_USER, "--email", "rp@example.test"], RP_PASSWORD),
        (
            [
                "clients", "create", RP_ID, "--public",
                "--redirect-uri", RP_REDIRECT,
                "--grant-type", "authorization_code",
                "--grant-type", "refresh_token",
                "--scope", "openid email offline_access",
            ],
            None,
        ),
    ):  # fmt: skip
        if stdin is not None:
            args = [*args, "--password-stdin"]
        result = subprocess.run(
            [sys.executable, "-m", "tessera", *args],
            env=server.env,
            input=None if stdin is None else stdin + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


async def authorize(server: RunningServer, url: str) -> str:
    """Log in and allow, as a browser would; the URL the code comes back on."""
    async with httpx.AsyncClient(base_url=server.base_url) as browser:
        deadline = time.monotonic() + 10
        # The server loads new clients on its change poll.
        while (response := await browser.get(url)).status_code != 302:
            assert time.monotonic() < deadline, response.text
            await asyncio.sleep(0.05)
        login = await browser.get(response.headers["location"])
        response = await browser.post(
            "/login",
            data={
                "csrf_token": hidden(login.text, "csrf_token"),
                "request": hidden(login.text, "request"),
                "username": RP_USER,
                "password": RP_PASSWORD,
            },
        )
        assert response.status_code == 303, response.text
        consent = await browser.get(response.headers["location"])
        response = await browser.post(
            "/consent",
            data={
                "csrf_token": hidden(consent.text, "csrf_token"),
                "request": hidden(consent.text, "request"),
                "decision": "allow",
            },
        )
        assert response.status_code == 303, response.text
        return response.headers["location"]


async def test_code_flow_against_tessera(server: RunningServer) -> None:
    register(server)
    async with httpx.AsyncClient(timeout=10) as http:
        client = Client(await discover(server.base_url, http), RP_ID, RP_REDIRECT, http)
        pending = client.begin("openid email offline_access")

        callback = parse_qs(urlsplit(await authorize(server, pending.url)).query)
        Client.check_state(pending, callback["state"][0])
        tokens = await client.exchange(callback["code"][0], pending)
        userinfo = await client.userinfo(tokens)
        refreshed = await client.refresh(tokens, pending.nonce)

        assert tokens.id_claims["nonce"] == pending.nonce
        assert userinfo["email"] == "rp@example.test"
        assert refreshed.id_claims["sub"] == tokens.id_claims["sub"]
        # Rotated (RFC 9700 §4.14.2): the client must keep the new one.
        assert refreshed.refresh_token not in (None, tokens.refresh_token)
