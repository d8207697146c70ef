"""ID tokens across sign-ins, as the OpenID Foundation's basic OP plan
checks them: auth_time kept by a silent authorization and renewed by a
forced login, parameters a provider must ignore, and a code redeemed with
client_secret_post."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from tests.server.people.helpers import (
    NATIVE_V4,
    REDIRECT,
    VERIFIER,
    Setup,
    allow,
    assert_code,
    authorize,
    id_token,
    params,
    sign_in,
    signed_in_browser,
    split,
)


def redeem(setup: Setup, browser: httpx.Client, location: str) -> dict[str, Any]:
    """Redeem the code in ``location`` with client_secret_post; the ID
    token's claims (its signature is checked by the code-grant tests)."""
    _, query = split(location)
    response = browser.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": params(setup)["redirect_uri"],
            "code_verifier": VERIFIER,
            "client_id": setup.client_id,
            "client_secret": setup.server.secrets[setup.client_id],
        },
    )
    assert response.status_code == 200, response.text
    claims: dict[str, Any] = jwt.decode(
        response.json()["id_token"], options={"verify_signature": False}
    )
    return claims


def first_sign_in(setup: Setup, browser: httpx.Client) -> dict[str, Any]:
    started = authorize(browser, params(setup))
    login = sign_in(browser, started.headers["location"], setup.username)
    answer = allow(browser, login.headers["location"])
    assert_code(answer, 303, setup)
    return redeem(setup, browser, answer.headers["location"])


def test_a_silent_authorization_keeps_the_sign_in_time(
    setup: Setup, browser: httpx.Client
) -> None:
    first = first_sign_in(setup, browser)
    time.sleep(1.1)

    again = authorize(browser, params(setup, prompt="none"))
    assert_code(again, 302, setup)
    second = redeem(setup, browser, again.headers["location"])

    assert second["sub"] == first["sub"] == setup.user_id
    assert second["auth_time"] == first["auth_time"]
    assert second["iat"] > first["iat"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"prompt": "login"}, id="prompt=login"),
        pytest.param({"max_age": "1"}, id="max_age=1 after 2 s"),
    ],
)
def test_a_forced_login_renews_the_sign_in_time(
    setup: Setup, browser: httpx.Client, changes: dict[str, str]
) -> None:
    first = first_sign_in(setup, browser)
    # Times are whole seconds: after 2 s at least 2 have passed, more than
    # max_age=1 (OIDC Core §3.1.2.1 asks for a login when more have).
    time.sleep(2.05)

    again = authorize(browser, params(setup, **changes))
    assert again.headers["location"].startswith("/login?request=")
    login = sign_in(browser, again.headers["location"], setup.username)
    assert_code(login, 303, setup)
    second = redeem(setup, browser, login.headers["location"])

    assert second["sub"] == first["sub"]
    assert second["auth_time"] > first["auth_time"]
    assert abs(second["auth_time"] - time.time()) < 5


def test_a_long_max_age_keeps_the_sign_in_time(
    setup: Setup, browser: httpx.Client
) -> None:
    first = first_sign_in(setup, browser)

    again = authorize(browser, params(setup, max_age="10000"))
    assert_code(again, 302, setup)
    second = redeem(setup, browser, again.headers["location"])

    assert second["auth_time"] == first["auth_time"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"display": "page"}, id="display=page"),
        pytest.param({"display": "popup"}, id="display=popup"),
        pytest.param({"ui_locales": "se"}, id="ui_locales"),
        pytest.param({"claims_locales": "se"}, id="claims_locales"),
        pytest.param({"acr_values": "1 2"}, id="acr_values"),
        pytest.param(
            {"claims": '{"userinfo":{"name":{"essential":true}}}'}, id="claims"
        ),
        pytest.param({"extra": "foobar"}, id="unknown parameter"),
        pytest.param({"scope": "read openid"}, id="other scope order"),
    ],
)
def test_parameters_a_provider_may_ignore_do_not_stop_the_flow(
    setup: Setup, browser: httpx.Client, changes: dict[str, str]
) -> None:
    signed_in_browser(setup, browser)

    response = authorize(browser, params(setup, **changes))

    assert_code(response, 302, setup)


# id_token_hint (OIDC Core §3.1.2.1): whom the client believes signed in.


def test_a_silent_authorization_with_the_persons_hint_gets_a_code(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)
    hint = id_token(setup, subject=setup.user_id)

    response = authorize(browser, params(setup, prompt="none", id_token_hint=hint))

    assert_code(response, 302, setup)


def test_a_silent_authorization_with_someone_elses_hint_is_login_required(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)
    hint = id_token(setup, subject="someone-else")

    response = authorize(browser, params(setup, prompt="none", id_token_hint=hint))

    assert response.status_code == 302
    base, query = split(response.headers["location"])
    assert base == REDIRECT
    assert (query["error"], query["state"]) == ("login_required", "xyz")
    assert "code" not in query


def test_someone_elses_hint_asks_for_a_login_that_then_stands(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)
    hint = id_token(setup, subject="someone-else")

    started = authorize(browser, params(setup, id_token_hint=hint))
    assert started.headers["location"].startswith("/login?request=")
    login = sign_in(browser, started.headers["location"], setup.username)

    assert_code(login, 303, setup)


@pytest.mark.parametrize(
    ("changes", "redirect_uri", "description"),
    [
        pytest.param(
            {"id_token_hint": "not.an.idtoken"},
            REDIRECT,
            "The id_token_hint is not a valid ID token.",
            id="malformed",
        ),
        pytest.param(
            {"id_token_hint": None},
            NATIVE_V4,
            "The id_token_hint was issued to another client.",
            id="another client's",
        ),
    ],
)
def test_a_bad_hint_is_invalid_request(
    setup: Setup,
    browser: httpx.Client,
    changes: dict[str, str | None],
    redirect_uri: str,
    description: str,
) -> None:
    if changes["id_token_hint"] is None:
        # Issued to the web client, presented by the public one.
        changes = {
            "id_token_hint": id_token(setup, subject=setup.user_id),
            "client_id": setup.public_id,
            "redirect_uri": redirect_uri,
        }

    response = authorize(browser, params(setup, **changes))

    assert response.status_code == 302
    base, query = split(response.headers["location"])
    assert base == redirect_uri
    assert query == {
        "error": "invalid_request",
        "error_description": description,
        "state": "xyz",
        "iss": setup.issuer,
    }


# login_hint: the login form's first value, nothing more.


@pytest.mark.parametrize(
    ("hint", "shown"),
    [
        pytest.param("ada@example.test", 'value="ada@example.test"', id="plain"),
        pytest.param('"><b>x', 'value="&#34;&gt;&lt;b&gt;x"', id="escaped"),
        pytest.param("x" * 129, 'value=""', id="too long: ignored"),
    ],
)
def test_login_hint_fills_the_username_field(
    setup: Setup, browser: httpx.Client, hint: str, shown: str
) -> None:
    started = authorize(browser, params(setup, login_hint=hint))
    assert started.headers["location"].startswith("/login?request=")

    page = browser.get(started.headers["location"])

    assert page.status_code == 200
    username_field = page.text[page.text.index('id="username"') :]
    assert username_field.split(">", 1)[0].count(shown) == 1


def test_login_hint_is_only_a_hint(setup: Setup, browser: httpx.Client) -> None:
    """Whoever signs in is signed in: the hint names nobody for certain."""
    started = authorize(browser, params(setup, login_hint="someone-else"))

    login = sign_in(browser, started.headers["location"], setup.username)

    assert login.status_code == 303
    assert login.headers["location"].startswith("/consent?request=")
