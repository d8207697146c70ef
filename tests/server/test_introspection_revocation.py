"""Introspection (RFC 7662) and revocation (RFC 7009) of the server's own
access tokens."""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tessera.keys.signing import SigningKey
from tests.server.helpers import (
    AUTH_FAILED,
    BASIC_CHALLENGE,
    FORM,
    assert_error,
    assert_no_store,
    b64url,
    basic,
    issue_token,
    jwks,
    sign,
    token_claims,
    unique,
    verify,
)
from tests.support import RunningServer, start_server

INACTIVE = {"active": False}


@dataclass(frozen=True)
class Party:
    """A registered client and its secret."""

    client_id: str
    secret: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": basic(self.client_id, self.secret)}


def register(
    server: RunningServer,
    prefix: str,
    audiences: tuple[str, ...] = ("https://api.example.test",),
    *,
    may_introspect: bool = False,
) -> Party:
    client_id = unique(prefix)
    secret = server.create_client(
        client_id, audiences=audiences, may_introspect=may_introspect
    )
    return Party(client_id, secret)


def introspect(http: httpx.Client, caller: Party, token: str) -> httpx.Response:
    return http.post("/oauth2/introspect", data={"token": token}, headers=caller.auth())


def revoke(http: httpx.Client, caller: Party, token: str) -> httpx.Response:
    return http.post("/oauth2/revoke", data={"token": token}, headers=caller.auth())


def assert_inactive(response: httpx.Response) -> None:
    """RFC 7662 §2.2: nothing but ``active`` for a token the caller may not
    know about."""
    assert response.status_code == 200, response.text
    assert_no_store(response)
    assert response.content == b'{"active":false}'


def assert_revoked_quietly(response: httpx.Response) -> None:
    """RFC 7009 §2.2: 200 and nothing to read, whatever the token was."""
    assert response.status_code == 200, response.text
    assert_no_store(response)
    assert response.content == b""


# Who may see a token.


def test_own_client_sees_the_claims(server: RunningServer, http: httpx.Client) -> None:
    owner = register(server, "owner")
    token = issue_token(http, owner.client_id, owner.secret)

    response = introspect(http, owner, token)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    claims = verify(http, token)[1]
    assert response.json() == {"active": True, "token_type": "Bearer", **claims}


@pytest.mark.parametrize(
    ("token_audiences", "caller_audiences", "may_introspect", "active"),
    [
        pytest.param(("X",), ("X",), True, True, id="resource-server-for-audience"),
        pytest.param(("X", "Y"), ("Y", "Z"), True, True, id="one-audience-in-common"),
        pytest.param(("X",), ("X",), False, False, id="same-audience-not-marked"),
        pytest.param(("X",), ("Y",), True, False, id="resource-server-elsewhere"),
        pytest.param(("X",), (), True, False, id="client-without-audience"),
    ],
)
def test_another_client_sees_only_tokens_meant_for_it(
    server: RunningServer,
    http: httpx.Client,
    token_audiences: tuple[str, ...],
    caller_audiences: tuple[str, ...],
    may_introspect: bool,
    active: bool,
) -> None:
    """RFC 7662 §4: a protected resource learns about the tokens that can be
    used at it, and nothing else."""
    base = f"https://{unique('api')}.example.test/"
    owner = register(
        server, "owner", audiences=tuple(base + a for a in token_audiences)
    )
    caller = register(
        server,
        "caller",
        audiences=tuple(base + a for a in caller_audiences),
        may_introspect=may_introspect,
    )
    token = issue_token(http, owner.client_id, owner.secret)

    response = introspect(http, caller, token)

    if active:
        assert response.status_code == 200, response.text
        claims = verify(http, token)[1]
        assert response.json() == {"active": True, "token_type": "Bearer", **claims}
    else:
        assert_inactive(response)


@pytest.mark.parametrize("hint", ["access_token", "refresh_token"])
def test_known_token_type_hints_are_accepted(
    server: RunningServer, http: httpx.Client, hint: str
) -> None:
    """RFC 7662 §2.1: a wrong hint only widens the search."""
    owner = register(server, "hint")
    token = issue_token(http, owner.client_id, owner.secret)

    response = http.post(
        "/oauth2/introspect",
        data={"token": token, "token_type_hint": hint},
        headers=owner.auth(),
    )

    assert response.status_code == 200, response.text
    assert response.json()["active"] is True


# Tokens that are not active.


@dataclass(frozen=True)
class Ctx:
    server: RunningServer
    http: httpx.Client
    key: SigningKey
    owner: Party

    def issued(self) -> str:
        return issue_token(self.http, self.owner.client_id, self.owner.secret)

    def claims(self, **changes: object) -> dict[str, object]:
        return token_claims(self.server, self.owner.client_id, **changes)

    def signed(self, **changes: object) -> str:
        return sign(self.key, self.claims(**changes))


def with_payload(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return f"{header}.{b64url({**claims, **changes})}.{signature}"


def foreign_signed(ctx: Ctx) -> str:
    """Right header, right claims, someone else's key."""
    kid = jwt.get_unverified_header(ctx.issued())["kid"]
    key = ec.generate_private_key(ec.SECP256R1())
    headers = {"kid": kid, "typ": "at+jwt"}
    return jwt.encode(ctx.claims(), key, algorithm="ES256", headers=headers)


def hs256_with_published_key(ctx: Ctx) -> str:
    """The algorithm-confusion attack: HMAC keyed with the public JWK."""
    kid = jwt.get_unverified_header(ctx.issued())["kid"]
    public = {k["kid"]: k for k in jwks(ctx.http)["keys"]}[kid]
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    signing_input = f"{b64url(header)}.{b64url(ctx.claims())}".encode()
    mac = hmac.digest(json.dumps(public).encode(), signing_input, "sha256")
    return f"{signing_input.decode()}.{b64url(mac)}"


def unsigned(ctx: Ctx) -> str:
    return f"{b64url({'alg': 'none', 'typ': 'at+jwt'})}.{b64url(ctx.claims())}."


def expired(ctx: Ctx) -> str:
    now = int(time.time())
    return ctx.signed(iat=now - 1000, exp=now - 1)


INACTIVE_TOKENS: list[object] = [
    pytest.param(lambda ctx: "not-a-token", id="garbage"),
    pytest.param(lambda ctx: "a.b.c", id="three-garbage-parts"),
    pytest.param(lambda ctx: "é.é.é", id="non-ascii"),
    pytest.param(
        lambda ctx: ctx.issued() + "A" * 8192, id="real-token-with-oversized-tail"
    ),
    pytest.param(
        lambda ctx: with_payload(ctx.issued(), scope="read write admin"),
        id="tampered-payload",
    ),
    pytest.param(lambda ctx: ctx.issued()[:-6] + "AAAAAA", id="tampered-signature"),
    pytest.param(foreign_signed, id="foreign-signed"),
    pytest.param(hs256_with_published_key, id="hs256-with-published-key"),
    pytest.param(unsigned, id="alg-none"),
    pytest.param(expired, id="expired"),
    pytest.param(
        lambda ctx: ctx.signed(iss="https://evil.example.test"), id="other-issuer"
    ),
    pytest.param(
        lambda ctx: sign(ctx.key, ctx.claims(), typ="JWT"),
        id="typ-jwt-not-at-jwt",
    ),
    pytest.param(
        lambda ctx: sign(ctx.key, ctx.claims(), kid="unknown"),
        id="unknown-kid",
    ),
    pytest.param(lambda ctx: ctx.signed(exp="never"), id="exp-not-a-number"),
    pytest.param(lambda ctx: ctx.signed(jti=None), id="jti-null"),
]


@pytest.mark.parametrize("make_token", INACTIVE_TOKENS)
def test_token_is_inactive(
    server: RunningServer,
    http: httpx.Client,
    server_key: SigningKey,
    make_token: Callable[[Ctx], str],
) -> None:
    ctx = Ctx(server, http, server_key, register(server, "inactive"))
    token = make_token(ctx)

    response = introspect(http, ctx.owner, token)

    assert_inactive(response)


def test_token_signed_with_the_server_key_is_active(
    server: RunningServer, http: httpx.Client, server_key: SigningKey
) -> None:
    """The control for the forged tokens above: with nothing changed, the
    forging helper makes a token the server takes as its own."""
    ctx = Ctx(server, http, server_key, register(server, "forged-control"))
    claims = ctx.claims()

    response = introspect(http, ctx.owner, sign(server_key, claims))

    assert response.status_code == 200, response.text
    assert response.json() == {"active": True, "token_type": "Bearer", **claims}


# Requests both endpoints refuse.

MISSING_TOKEN = "The token parameter is missing."


@pytest.mark.parametrize("path", ["/oauth2/introspect", "/oauth2/revoke"])
@pytest.mark.parametrize(
    ("form", "auth", "status", "error", "description", "challenge"),
    [
        pytest.param(
            {}, "basic", 400, "invalid_request", MISSING_TOKEN, False, id="no-token"
        ),
        pytest.param(
            {"token": ""},
            "basic",
            400,
            "invalid_request",
            MISSING_TOKEN,
            False,
            id="empty-token",
        ),
        pytest.param(
            {"token": ["a", "b"]},
            "basic",
            400,
            "invalid_request",
            "The token parameter is repeated.",
            False,
            id="repeated-token",
        ),
        pytest.param(
            {"token": "x", "token_type_hint": "id_token"},
            "basic",
            400,
            "unsupported_token_type",
            "The token type is not supported.",
            False,
            id="unsupported-hint",
        ),
        pytest.param(
            {"token": "x"},
            "wrong-basic",
            401,
            "invalid_client",
            AUTH_FAILED,
            True,
            id="wrong-secret-basic",
        ),
        pytest.param(
            {"token": "x"},
            "wrong-post",
            401,
            "invalid_client",
            AUTH_FAILED,
            False,
            id="wrong-secret-post",
        ),
        pytest.param(
            {"token": "x"},
            "none",
            401,
            "invalid_client",
            AUTH_FAILED,
            False,
            id="no-client-auth",
        ),
    ],
)
def test_request_is_refused(
    server: RunningServer,
    http: httpx.Client,
    path: str,
    form: dict[str, str | list[str]],
    auth: str,
    status: int,
    error: str,
    description: str,
    challenge: bool,
) -> None:
    caller = register(server, "refused")
    headers: dict[str, str] = {}
    if auth == "basic":
        headers = caller.auth()
    elif auth == "wrong-basic":
        headers = {"Authorization": basic(caller.client_id, "tsec_wrong")}
    elif auth == "wrong-post":
        form = {**form, "client_id": caller.client_id, "client_secret": "tsec_wrong"}

    response = http.post(
        path,
        content=urlencode(form, doseq=True),
        headers={"Content-Type": FORM, **headers},
    )

    assert_error(response, status, error, description)
    assert response.headers.get("www-authenticate") == (
        BASIC_CHALLENGE if challenge else None
    )


@pytest.mark.parametrize("path", ["/oauth2/introspect", "/oauth2/revoke"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_only_post_is_allowed(http: httpx.Client, path: str, method: str) -> None:
    response = http.request(method, path)

    assert_error(response, 405, "invalid_request", "The request method is not allowed.")
    assert response.headers["allow"] == "POST"


# Revocation.


def test_revoked_token_is_inactive_and_revoking_again_is_harmless(
    server: RunningServer, http: httpx.Client
) -> None:
    owner = register(server, "revoker")
    revoked = issue_token(http, owner.client_id, owner.secret)
    kept = issue_token(http, owner.client_id, owner.secret)

    assert_revoked_quietly(revoke(http, owner, revoked))
    assert_revoked_quietly(revoke(http, owner, revoked))

    assert_inactive(introspect(http, owner, revoked))
    assert introspect(http, owner, kept).json()["active"] is True


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda ctx: "not-a-token", id="garbage"),
        pytest.param(expired, id="expired"),
        pytest.param(foreign_signed, id="foreign-signed"),
    ],
)
def test_revoking_a_token_that_is_not_valid_is_not_an_error(
    server: RunningServer,
    http: httpx.Client,
    server_key: SigningKey,
    make_token: Callable[[Ctx], str],
) -> None:
    ctx = Ctx(server, http, server_key, register(server, "revoke-invalid"))

    assert_revoked_quietly(revoke(http, ctx.owner, make_token(ctx)))


@pytest.mark.parametrize("same_audience", [False, True])
def test_revoking_another_clients_token_is_refused(
    server: RunningServer, http: httpx.Client, same_audience: bool
) -> None:
    """RFC 7009 §2.1: the server checks that the token was issued to the
    client asking; a resource server that may introspect it may not revoke it."""
    api = f"https://{unique('api')}.example.test"
    owner = register(server, "owner", audiences=(api,))
    other = register(server, "other", audiences=(api,) if same_audience else ("urn:x",))
    token = issue_token(http, owner.client_id, owner.secret)

    response = revoke(http, other, token)

    assert_error(
        response,
        400,
        "invalid_request",
        "The token was not issued to this client.",
    )
    assert introspect(http, owner, token).json()["active"] is True


def test_revocation_survives_a_restart(fresh_server: RunningServer) -> None:
    with httpx.Client(base_url=fresh_server.base_url) as http:
        owner = register(fresh_server, "restart")
        revoked = issue_token(http, owner.client_id, owner.secret)
        kept = issue_token(http, owner.client_id, owner.secret)
        assert_revoked_quietly(revoke(http, owner, revoked))
    fresh_server.stop()

    # Same data, same issuer; a new process on a new port.
    again = start_server(fresh_server.data_dir, TESSERA_ISSUER=fresh_server.base_url)
    try:
        with httpx.Client(base_url=again.base_url) as http:
            assert_inactive(introspect(http, owner, revoked))
            assert introspect(http, owner, kept).json()["active"] is True
    finally:
        again.stop()
