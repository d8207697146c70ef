"""Client authentication with a secret (RFC 6749 §2.3.1): the encoding of
HTTP Basic credentials, and failures that reveal nothing about the client."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.server.helpers import (
    AUTH_FAILED,
    BASIC_CHALLENGE,
    assert_error,
    basic,
    raw_basic,
    unique,
    verify,
)
from tests.support import RunningServer

# Characters that mean something in form-urlencoding or in the Basic
# "id:secret" pair; the store takes any printable client id up to 128.
ENCODED = [
    pytest.param("ci:deploy+x", None, id="id-with-colon-and-plus"),
    pytest.param("50%ab/x=y&z", None, id="id-with-percent-slash-equals-ampersand"),
    pytest.param(
        "ci-plain", "s3:cr+t 100%/=&ü", id="secret-with-reserved-and-non-ascii"
    ),
    pytest.param("a:b%c+d", "%41:+ ", id="both"),
]


def secret_for(chosen: str | None) -> str | None:
    # A chosen secret gets random characters too, so that no two tests (nor
    # the server log) can share it by accident.
    return None if chosen is None else chosen + secrets.token_hex(8)


@pytest.mark.parametrize(("client_id", "chosen_secret"), ENCODED)
def test_basic_credentials_are_form_urlencoded(
    server: RunningServer, http: httpx.Client, client_id: str, chosen_secret: str | None
) -> None:
    client_id = unique(client_id)
    secret = server.create_client(client_id, secret=secret_for(chosen_secret))

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(client_id, secret)},
    )

    assert response.status_code == 200, response.text
    assert verify(http, response.json()["access_token"])[1]["sub"] == client_id


@pytest.mark.parametrize(("client_id", "chosen_secret"), ENCODED)
def test_post_credentials_with_the_same_characters(
    server: RunningServer, http: httpx.Client, client_id: str, chosen_secret: str | None
) -> None:
    client_id = unique(client_id)
    secret = server.create_client(client_id, secret=secret_for(chosen_secret))

    response = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
    )

    assert response.status_code == 200, response.text
    assert verify(http, response.json()["access_token"])[1]["sub"] == client_id


@pytest.mark.parametrize(
    ("client_id", "chosen_secret"),
    [
        # Split at the first colon: client "ci", secret "deploy+x-…:tsec_…".
        pytest.param("ci:deploy+x", None, id="colon-in-id"),
        # "%ab" decodes to a byte that is not UTF-8.
        pytest.param("50%ab-x", None, id="percent-in-id"),
        # "+" decodes to a space.
        pytest.param("ci+x", None, id="plus-in-id"),
        pytest.param("ci-plain", "s3cr+t", id="plus-in-secret"),
        pytest.param("ci-plain", "100%25-", id="percent-escape-in-secret"),
    ],
)
def test_unencoded_basic_credentials_fail_cleanly(
    server: RunningServer, http: httpx.Client, client_id: str, chosen_secret: str | None
) -> None:
    client_id = unique(client_id)
    secret = server.create_client(client_id, secret=secret_for(chosen_secret))

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": raw_basic(f"{client_id}:{secret}")},
    )

    assert_error(response, 401, "invalid_client", AUTH_FAILED)
    assert response.headers["www-authenticate"] == BASIC_CHALLENGE


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "date"]
    return response.status_code, headers, response.content


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_unknown_disabled_and_wrong_secret_look_the_same(
    server: RunningServer, http: httpx.Client, method: str
) -> None:
    known = unique("known")
    disabled = unique("disabled")
    server.create_client(known)
    server.create_client(disabled, disabled=True)
    wrong = "tsec_" + secrets.token_hex(24)
    attempts = {
        "unknown": (unique("unknown"), wrong),
        "wrong-secret": (known, wrong),
        "disabled-right-secret": (disabled, server.secrets[disabled]),
    }

    responses = {}
    for name, (client_id, secret) in attempts.items():
        if method == "client_secret_basic":
            responses[name] = http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers={"Authorization": basic(client_id, secret)},
            )
        else:
            responses[name] = http.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                },
            )

    assert_error(responses["unknown"], 401, "invalid_client", AUTH_FAILED)
    challenge = responses["unknown"].headers.get("www-authenticate")
    if method == "client_secret_basic":
        assert challenge == BASIC_CHALLENGE
    else:
        assert challenge is None
    expected = comparable(responses["unknown"])
    for name, response in responses.items():
        assert comparable(response) == expected, name
