"""The token endpoint when the request is right: RFC 6749 §4.4 with the
response of §5.1, and the RFC 9068 access token it carries."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from tests.server.helpers import (
    DEFAULT_AUDIENCE,
    DEFAULT_TTL,
    FORM,
    GRANT,
    MAX_TTL,
    assert_error,
    assert_no_store,
    basic,
    issue_token,
    jwks,
    unique,
    verify,
)
from tests.support import RunningServer


def token_post(
    http: httpx.Client, content: str, headers: dict[str, str]
) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        content=content.encode(),
        headers={"Content-Type": FORM, **headers},
    )


@pytest.mark.parametrize(
    "method",
    [
        "client_secret_basic",
        "client_secret_post",
        "basic_with_matching_client_id_in_body",
        "basic_with_utf8_charset",
    ],
)
def test_issues_a_bearer_token(
    server: RunningServer, http: httpx.Client, method: str
) -> None:
    client_id = unique("issue")
    secret = server.create_client(client_id)
    headers = {"Authorization": basic(client_id, secret)}
    content = GRANT
    if method == "client_secret_post":
        headers = {}
        content += f"&client_id={client_id}&client_secret={secret}"
    elif method == "basic_with_matching_client_id_in_body":
        content += f"&client_id={client_id}"
    elif method == "basic_with_utf8_charset":
        headers["Content-Type"] = f"{FORM}; charset=UTF-8"

    response = token_post(http, content, headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "Bearer",
        "expires_in": DEFAULT_TTL,
        "scope": "read write",
    }
    assert verify(http, body["access_token"])[1]["client_id"] == client_id


def test_token_header_and_claims_are_rfc_9068(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("claims")
    server.create_client(client_id)

    before = int(time.time())
    first = issue_token(http, client_id, server.secrets[client_id])
    second = issue_token(http, client_id, server.secrets[client_id])
    after = int(time.time())

    header, claims = verify(http, first)
    published = {key["kid"]: key for key in jwks(http)["keys"]}
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": header["kid"]}
    assert published[header["kid"]]["alg"] == "ES256"
    assert before <= claims["iat"] <= after
    assert claims == {
        "iss": server.base_url,
        "sub": client_id,
        "aud": DEFAULT_AUDIENCE,
        "exp": claims["iat"] + DEFAULT_TTL,
        "iat": claims["iat"],
        "jti": claims["jti"],
        "client_id": client_id,
        "scope": "read write",
    }
    assert claims["jti"] != verify(http, second)[1]["jti"]


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        pytest.param(None, "read", id="omitted-gives-default"),
        pytest.param("", "read", id="empty-counts-as-omitted"),
        pytest.param("write", "write", id="one-allowed"),
        pytest.param("write read", "read write", id="subset-sorted"),
        pytest.param("read write ops:deploy", "ops:deploy read write", id="all"),
    ],
)
def test_grants_requested_or_default_scope(
    server: RunningServer, http: httpx.Client, requested: str | None, granted: str
) -> None:
    client_id = unique("scope")
    server.create_client(
        client_id, scopes="read write ops:deploy", default_scopes="read"
    )
    form = {} if requested is None else {"scope": requested}

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, server.secrets[client_id]),
    )

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == granted
    assert verify(http, response.json()["access_token"])[1]["scope"] == granted


def test_no_scope_at_all_omits_it_from_the_response(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("scopeless")
    server.create_client(client_id, scopes="read", default_scopes="")

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, server.secrets[client_id]),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "Bearer",
        "expires_in": DEFAULT_TTL,
    }
    assert "scope" not in verify(http, body["access_token"])[1]


MALFORMED_SCOPE = "The scope parameter is malformed."
NOT_ALLOWED_SCOPE = "The requested scope is invalid."


@pytest.mark.parametrize(
    ("requested", "description"),
    [
        pytest.param("admin", NOT_ALLOWED_SCOPE, id="not-allowed"),
        pytest.param("read admin", NOT_ALLOWED_SCOPE, id="partly-allowed"),
        pytest.param("READ", NOT_ALLOWED_SCOPE, id="case-differs"),
        pytest.param("read  write", MALFORMED_SCOPE, id="double-space"),
        pytest.param(" read", MALFORMED_SCOPE, id="leading-space"),
        pytest.param("read ", MALFORMED_SCOPE, id="trailing-space"),
        pytest.param('"read"', MALFORMED_SCOPE, id="double-quote"),
        pytest.param("read\\write", MALFORMED_SCOPE, id="backslash"),
        pytest.param("lecture-é", MALFORMED_SCOPE, id="non-ascii"),
    ],
)
def test_rejects_scope(
    server: RunningServer, http: httpx.Client, requested: str, description: str
) -> None:
    client_id = unique("bad-scope")
    server.create_client(client_id, scopes="read write")

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": requested},
        auth=(client_id, server.secrets[client_id]),
    )

    assert_error(response, 400, "invalid_scope", description)


API_A = "https://api-a.example.test"
API_B = "https://api-b.example.test/v1"
URN_C = "urn:example:c"
NOT_ALLOWED_TARGET = "The requested resource or audience is invalid."
NOT_ABSOLUTE = "A resource must be an absolute URI."


@pytest.mark.parametrize(
    ("form", "audience"),
    [
        pytest.param([], [API_A, API_B, URN_C], id="none-gives-all-allowed"),
        pytest.param([("resource", API_A)], API_A, id="one-resource-is-a-string"),
        pytest.param(
            [("resource", API_B), ("resource", API_A)],
            [API_B, API_A],
            id="repeated-resource-in-order",
        ),
        pytest.param([("resource", URN_C)], URN_C, id="urn-resource"),
        pytest.param([("audience", URN_C)], URN_C, id="one-audience"),
        pytest.param(
            [("audience", API_A), ("audience", API_B)],
            [API_A, API_B],
            id="repeated-audience",
        ),
        pytest.param(
            [("resource", API_A), ("audience", URN_C)],
            [API_A, URN_C],
            id="resource-and-audience",
        ),
        pytest.param(
            [("resource", API_A), ("audience", API_A)], API_A, id="duplicates-merged"
        ),
    ],
)
def test_audience_is_chosen_among_allowed(
    server: RunningServer,
    http: httpx.Client,
    form: list[tuple[str, str]],
    audience: str | list[str],
) -> None:
    client_id = unique("target")
    server.create_client(client_id, audiences=(API_A, API_B, URN_C))

    response = token_post(
        http,
        urlencode([("grant_type", "client_credentials"), *form]),
        {"Authorization": basic(client_id, server.secrets[client_id])},
    )

    assert response.status_code == 200, response.text
    assert verify(http, response.json()["access_token"])[1]["aud"] == audience


@pytest.mark.parametrize(
    ("form", "description"),
    [
        pytest.param(
            [("resource", "https://evil.example.test")],
            NOT_ALLOWED_TARGET,
            id="resource-not-allowed",
        ),
        pytest.param(
            [("audience", "https://evil.example.test")],
            NOT_ALLOWED_TARGET,
            id="audience-not-allowed",
        ),
        pytest.param(
            [("resource", API_A), ("resource", "https://evil.example.test")],
            NOT_ALLOWED_TARGET,
            id="one-of-two-not-allowed",
        ),
        pytest.param(
            [("resource", API_A + "/")], NOT_ALLOWED_TARGET, id="not-an-exact-match"
        ),
        pytest.param([("resource", "/v1")], NOT_ABSOLUTE, id="relative-resource"),
        pytest.param(
            [("resource", "//api-a.example.test")],
            NOT_ABSOLUTE,
            id="network-path-resource",
        ),
        pytest.param(
            [("resource", API_A + "#frag")], NOT_ABSOLUTE, id="resource-with-fragment"
        ),
        pytest.param(
            [("resource", API_A + "#")], NOT_ABSOLUTE, id="resource-with-empty-fragment"
        ),
    ],
)
def test_rejects_target(
    server: RunningServer,
    http: httpx.Client,
    form: list[tuple[str, str]],
    description: str,
) -> None:
    client_id = unique("bad-target")
    server.create_client(client_id, audiences=(API_A, API_B, URN_C))

    response = token_post(
        http,
        urlencode([("grant_type", "client_credentials"), *form]),
        {"Authorization": basic(client_id, server.secrets[client_id])},
    )

    assert_error(response, 400, "invalid_target", description)


def test_client_without_audience_gets_no_token(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("no-audience")
    server.create_client(client_id, audiences=())

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, server.secrets[client_id]),
    )

    assert_error(response, 400, "invalid_target", NOT_ALLOWED_TARGET)


@pytest.mark.parametrize(
    ("token_ttl", "expires_in"),
    [
        pytest.param(None, DEFAULT_TTL, id="server-default"),
        pytest.param(60, 60, id="client-shorter"),
        pytest.param(MAX_TTL, MAX_TTL, id="client-at-maximum"),
        pytest.param(MAX_TTL + 1, MAX_TTL, id="capped-just-above"),
        pytest.param(99999, MAX_TTL, id="capped-far-above"),
    ],
)
def test_token_lifetime(
    server: RunningServer, http: httpx.Client, token_ttl: int | None, expires_in: int
) -> None:
    client_id = unique("ttl")
    server.create_client(client_id, token_ttl=token_ttl)

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, server.secrets[client_id]),
    )

    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == expires_in
    claims = verify(http, response.json()["access_token"])[1]
    assert claims["exp"] - claims["iat"] == expires_in


KEY_TYPES: dict[str, dict[str, Any]] = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "RS256": {"kty": "RSA"},
    "PS256": {"kty": "RSA"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
}


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_client_signing_algorithm(
    server: RunningServer, http: httpx.Client, alg_clients: dict[str, str], alg: str
) -> None:
    client_id = alg_clients[alg]

    token = issue_token(http, client_id, server.secrets[client_id])

    header, claims = verify(http, token)
    assert header == {"alg": alg, "typ": "at+jwt", "kid": header["kid"]}
    key = {k["kid"]: k for k in jwks(http)["keys"]}[header["kid"]]
    assert key["alg"] == alg
    assert key.items() >= KEY_TYPES[alg].items()
    assert claims["client_id"] == client_id
    # The signature is the published key's and no other's.
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        verify(http, tampered)


def test_unknown_parameters_are_ignored_up_to_the_limits(
    server: RunningServer,
    http: httpx.Client,
) -> None:
    """RFC 6749 §3.2: unrecognised parameters are ignored. The body may hold
    64 fields and 16 KiB."""
    client_id = unique("limits")
    secret = server.create_client(client_id)
    fields = [GRANT] + [f"x{i}=1" for i in range(62)] + ["pad="]
    content = "&".join(fields)
    content += "p" * (16 * 1024 - len(content))
    assert len(content) == 16 * 1024
    assert content.count("&") + 1 == 64

    response = token_post(http, content, {"Authorization": basic(client_id, secret)})

    assert response.status_code == 200, response.text
