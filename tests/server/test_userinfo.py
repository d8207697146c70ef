"""The userinfo endpoint (OIDC Core §5.3) and its bearer-token challenges
(RFC 6750 §3), over HTTP against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.delegation import (
    RelyingParty,
    create_person,
    register,
    set_disabled,
    sign_in,
)
from tests.server.helpers import issue_token, unique
from tests.support import RunningServer

CHALLENGE = 'Bearer realm="tessera"'
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token is invalid.",
}


@pytest.fixture(scope="module")
def rp(server: RunningServer) -> RelyingParty:
    return register(server, "userinfo-rp")


@pytest.fixture(scope="module")
def person(server: RunningServer) -> str:
    return create_person(server, name="Ada Lovelace", email="ada@example.test")


def userinfo(
    http: httpx.Client, token: str | None, method: str = "GET"
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return http.request(method, "/oauth2/userinfo", headers=headers)


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == (
        f'{CHALLENGE}, error="invalid_token", '
        'error_description="The access token is invalid."'
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == INVALID_TOKEN


@pytest.mark.parametrize(
    ("scope", "claims"),
    [
        pytest.param("openid", {}, id="openid: sub only"),
        pytest.param(
            "openid profile",
            {"name": "Ada Lovelace", "preferred_username": True},
            id="profile",
        ),
        pytest.param("openid email", {"email": "ada@example.test"}, id="email"),
        pytest.param(
            "openid profile email offline_access read",
            {
                "name": "Ada Lovelace",
                "preferred_username": True,
                "email": "ada@example.test",
            },
            id="everything",
        ),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_scopes_decide_the_claims(
    server: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    scope: str,
    claims: dict[str, Any],
    method: str,
) -> None:
    token = sign_in(server, http, rp, person, scope=scope)["access_token"]

    response = userinfo(http, token, method)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    if claims.get("preferred_username"):
        assert body.pop("preferred_username").startswith("ada-")
        claims = {k: v for k, v in claims.items() if k != "preferred_username"}
    assert body == {"sub": person, **claims}


def test_claims_without_a_value_are_left_out(
    server: RunningServer, http: httpx.Client, rp: RelyingParty
) -> None:
    nameless = create_person(server, name=None, email=None)
    token = sign_in(server, http, rp, nameless, scope="openid profile email")[
        "access_token"
    ]

    body = userinfo(http, token).json()

    assert body.keys() == {"sub", "preferred_username"}


def test_without_openid_the_scope_is_insufficient(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    token = sign_in(server, http, rp, person, scope="profile read")["access_token"]

    response = userinfo(http, token)

    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        f'{CHALLENGE}, error="insufficient_scope", '
        'error_description="The access token lacks the required scope.", '
        'scope="openid"'
    )
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks the required scope.",
    }


def test_a_revoked_token_is_invalid(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    token = sign_in(server, http, rp, person)["access_token"]
    assert userinfo(http, token).status_code == 200

    revoked = rp.post(http, "/oauth2/revoke", token=token)
    assert revoked.status_code == 200

    assert_invalid_token(userinfo(http, token))


def test_a_disabled_persons_token_is_invalid(
    server: RunningServer, http: httpx.Client, rp: RelyingParty
) -> None:
    person = create_person(server)
    token = sign_in(server, http, rp, person)["access_token"]

    set_disabled(server, person, True)

    assert_invalid_token(userinfo(http, token))


def test_a_client_credentials_token_names_no_person(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("machine")
    secret = server.create_client(client_id, scopes="openid read")
    token = issue_token(http, client_id, secret, scope="openid read")

    assert_invalid_token(userinfo(http, token))


def test_an_id_token_is_not_a_bearer_token(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    id_token = sign_in(server, http, rp, person)["id_token"]

    assert_invalid_token(userinfo(http, id_token))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-jwt", id="junk"),
        pytest.param("a b", id="space inside"),
        pytest.param("x" * 9000, id="too long"),
    ],
)
def test_a_bad_token_is_invalid(http: httpx.Client, token: str) -> None:
    assert_invalid_token(userinfo(http, token))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no header"),
        pytest.param("Basic YTpi", id="another scheme"),
    ],
)
def test_without_a_bearer_token_the_challenge_is_bare(
    http: httpx.Client, authorization: str | None
) -> None:
    """RFC 6750 §3.1: no error code for a request without authentication."""
    headers = {} if authorization is None else {"Authorization": authorization}

    response = http.get("/oauth2/userinfo", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.content == b""


def test_a_token_in_the_query_is_not_read(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    token = sign_in(server, http, rp, person)["access_token"]

    response = http.get("/oauth2/userinfo", params={"access_token": token})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


def test_a_token_in_a_posted_form_is_read(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    """RFC 6750 §2.2; OIDC Core §5.3.1 allows it."""
    token = sign_in(server, http, rp, person)["access_token"]

    response = http.post("/oauth2/userinfo", data={"access_token": token})

    assert response.status_code == 200, response.text
    assert response.json()["sub"] == person
    assert response.headers["cache-control"] == "no-store"


def test_a_bad_token_in_a_posted_form_is_invalid(http: httpx.Client) -> None:
    response = http.post("/oauth2/userinfo", data={"access_token": "not-a-jwt"})

    assert_invalid_token(response)


def test_a_token_sent_twice_is_invalid_request(
    server: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    """RFC 6750 §2: one method per request."""
    token = sign_in(server, http, rp, person)["access_token"]

    response = http.post(
        "/oauth2/userinfo",
        data={"access_token": token},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 400
    assert response.headers["www-authenticate"] == (
        f'{CHALLENGE}, error="invalid_request", '
        'error_description="The access token was sent more than once."'
    )
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The access token was sent more than once.",
    }


def test_a_repeated_access_token_field_is_invalid_request(
    http: httpx.Client,
) -> None:
    response = http.post(
        "/oauth2/userinfo",
        content=b"access_token=a&access_token=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_an_oversized_form_is_413(http: httpx.Client) -> None:
    response = http.post(
        "/oauth2/userinfo",
        content=b"access_token=" + b"a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_only_get_and_post_are_allowed(http: httpx.Client, method: str) -> None:
    response = http.request(method, "/oauth2/userinfo")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
