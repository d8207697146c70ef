"""/oauth2/authorize: redirect URI matching, the errors shown and the errors
redirected, PKCE, and what prompt and max_age make of a session."""

from __future__ import annotations

import httpx
import pytest

from tests.server.people.helpers import (
    CSP,
    LOCALHOST,
    NATIVE_V4,
    PRIVATE_USE,
    REDIRECT,
    VERIFIER,
    Setup,
    allow,
    assert_code,
    authorize,
    params,
    sign_in,
    signed_in_browser,
    split,
)

# Redirect URIs: exact matching, and the loopback port exception.


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param(REDIRECT, id="registered"),
        pytest.param("http://127.0.0.1:51004/cb", id="loopback v4 any port"),
        pytest.param("http://127.0.0.1/cb", id="loopback v4 no port"),
        pytest.param("http://[::1]:8080/native", id="loopback v6 any port"),
        pytest.param(LOCALHOST, id="localhost exactly as registered"),
        pytest.param(PRIVATE_USE, id="private-use scheme"),
    ],
)
def test_registered_redirect_uri_is_accepted(
    setup: Setup, browser: httpx.Client, redirect_uri: str
) -> None:
    response = authorize(browser, params(setup, redirect_uri=redirect_uri))

    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith("/login?request=")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://APP.example/cb", id="host case"),
        pytest.param("HTTPS://app.example/cb", id="scheme case"),
        pytest.param("https://app.example/CB", id="path case"),
        pytest.param("https://app.example/cb/", id="trailing slash"),
        pytest.param("https://app.example/cb?x=1", id="added query"),
        pytest.param("https://app.example/cb#x", id="fragment"),
        pytest.param("https://evil@app.example/cb", id="userinfo"),
        pytest.param("https://app.example.evil.test/cb", id="look-alike host"),
        pytest.param("https://app.example:443/cb", id="explicit default port"),
        pytest.param("https://app.example/cb/../cb", id="dot segments"),
        pytest.param("https://app.example/c%62", id="percent-encoded"),
        pytest.param("http://app.example/cb", id="downgraded scheme"),
        pytest.param("http://localhost:5000/cb", id="localhost other port"),
        pytest.param("http://127.0.0.1:5000/cb2", id="loopback other path"),
        pytest.param("http://127.0.0.2:5000/cb", id="other loopback address"),
        pytest.param("http://evil@127.0.0.1:5000/cb", id="loopback userinfo"),
        pytest.param("http://127.0.0.1:5000/cb?x=1", id="loopback added query"),
        pytest.param("https://127.0.0.1:5000/cb", id="loopback https"),
        pytest.param("com.example.app:/cb/x", id="private-use other path"),
    ],
)
def test_unregistered_redirect_uri_is_an_error_page(
    setup: Setup, browser: httpx.Client, redirect_uri: str
) -> None:
    response = authorize(browser, params(setup, redirect_uri=redirect_uri))

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "The redirect_uri is not registered for this client." in response.text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"client_id": "nobody"}, "The client is unknown or disabled.", id="unknown"
        ),
        pytest.param(
            {"client_id": None}, "The client_id parameter is missing.", id="missing"
        ),
        pytest.param(
            {"redirect_uri": None},
            "The redirect_uri parameter is missing.",
            id="no redirect_uri, several registered",
        ),
    ],
)
def test_bad_client_is_an_error_page_never_a_redirect(
    setup: Setup, browser: httpx.Client, changes: dict[str, str | None], message: str
) -> None:
    response = authorize(browser, params(setup, **changes))

    assert response.status_code == 400
    assert "location" not in response.headers
    assert message in response.text


def test_repeated_client_id_is_an_error_page(
    setup: Setup, browser: httpx.Client
) -> None:
    query = [*params(setup).items(), ("client_id", setup.client_id)]

    response = authorize(browser, query)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The client_id parameter is repeated." in response.text


def test_omitted_redirect_uri_is_the_only_registered_one(
    setup: Setup, browser: httpx.Client
) -> None:
    query = params(setup, client_id=setup.public_id, redirect_uri=None)

    response = authorize(browser, query)

    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith("/login?request=")


def test_code_of_a_request_without_redirect_uri_is_redeemed_without_it(
    setup: Setup, browser: httpx.Client
) -> None:
    """RFC 6749 §4.1.3: the token request repeats redirect_uri only if the
    authorization request had one."""
    started = authorize(
        browser, params(setup, client_id=setup.public_id, redirect_uri=None)
    )
    login = sign_in(browser, started.headers["location"], setup.username)
    answer = allow(browser, login.headers["location"])
    base, query = split(answer.headers["location"])
    assert base == NATIVE_V4

    response = browser.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": setup.public_id,
            "code": query["code"],
            "code_verifier": VERIFIER,
        },
    )

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


# Errors the client receives at its redirect URI, each with state and iss.


REDIRECTED_ERRORS = [
    (
        "response_type token",
        {"response_type": "token"},
        "unsupported_response_type",
        "Only the response_type code is supported.",
    ),
    (
        "no response_type",
        {"response_type": None},
        "invalid_request",
        "The response_type parameter is missing.",
    ),
    (
        "scope not allowed",
        {"scope": "openid admin"},
        "invalid_scope",
        "The requested scope is invalid.",
    ),
    (
        "malformed scope",
        {"scope": "openid  read"},
        "invalid_scope",
        "The scope parameter is malformed.",
    ),
    (
        "PKCE plain",
        {"code_challenge_method": "plain"},
        "invalid_request",
        "The code_challenge_method must be S256.",
    ),
    (
        "PKCE method omitted (plain)",
        {"code_challenge_method": None},
        "invalid_request",
        "The code_challenge_method must be S256.",
    ),
    (
        "PKCE method without challenge",
        {"code_challenge": None},
        "invalid_request",
        "code_challenge_method without code_challenge.",
    ),
    (
        "PKCE challenge malformed",
        {"code_challenge": "short"},
        "invalid_request",
        "The code_challenge is malformed.",
    ),
    (
        "unknown prompt",
        {"prompt": "login maybe"},
        "invalid_request",
        "The prompt parameter has an unknown value.",
    ),
    (
        "prompt none with login",
        {"prompt": "none login"},
        "invalid_request",
        "prompt=none cannot be combined with other values.",
    ),
    (
        "negative max_age",
        {"max_age": "-1"},
        "invalid_request",
        "The max_age parameter must be a non-negative integer.",
    ),
    (
        "max_age not a number",
        {"max_age": "1h"},
        "invalid_request",
        "The max_age parameter must be a non-negative integer.",
    ),
    (
        "request object",
        {"request": "eyJhbGciOiJub25lIn0.e30."},
        "request_not_supported",
        "Request objects are not supported.",
    ),
    (
        "request_uri",
        {"request_uri": "urn:ietf:params:oauth:request_uri:x"},
        "request_uri_not_supported",
        "The request_uri parameter is not supported.",
    ),
    (
        "response_mode fragment",
        {"response_mode": "fragment"},
        "invalid_request",
        "Only the response_mode query is supported.",
    ),
    (
        "prompt none, nobody signed in",
        {"prompt": "none"},
        "login_required",
        "The user is not signed in.",
    ),
]


@pytest.mark.parametrize(
    ("changes", "error", "description"),
    [pytest.param(*case[1:], id=case[0]) for case in REDIRECTED_ERRORS],
)
def test_error_is_redirected_with_state_and_iss(
    setup: Setup,
    browser: httpx.Client,
    changes: dict[str, str | None],
    error: str,
    description: str,
) -> None:
    response = authorize(browser, params(setup, **changes))

    assert response.status_code == 302, response.text
    base, query = split(response.headers["location"])
    assert base == REDIRECT
    assert query == {
        "error": error,
        "error_description": description,
        "state": "xyz",
        "iss": setup.issuer,
    }


def test_repeated_parameter_is_redirected_invalid_request(
    setup: Setup, browser: httpx.Client
) -> None:
    query = [*params(setup).items(), ("scope", "read")]

    response = authorize(browser, query)

    assert response.status_code == 302
    assert split(response.headers["location"]) == (
        REDIRECT,
        {
            "error": "invalid_request",
            "error_description": "The scope parameter is repeated.",
            "state": "xyz",
            "iss": setup.issuer,
        },
    )


def test_redirected_error_keeps_the_registered_query(
    setup: Setup, browser: httpx.Client
) -> None:
    response = authorize(
        browser, params(setup, redirect_uri=PRIVATE_USE, response_type="token")
    )

    assert response.status_code == 302
    assert response.headers["location"].startswith(PRIVATE_USE + "?error=")


def test_client_without_the_grant_is_unauthorized(
    setup: Setup, browser: httpx.Client
) -> None:
    response = authorize(browser, params(setup, client_id=setup.no_grant_id))

    assert response.status_code == 302
    assert split(response.headers["location"])[1] == {
        "error": "unauthorized_client",
        "error_description": "The client may not use the authorization code grant.",
        "state": "xyz",
        "iss": setup.issuer,
    }


def test_public_client_must_send_a_challenge(
    setup: Setup, browser: httpx.Client
) -> None:
    query = params(
        setup,
        client_id=setup.public_id,
        redirect_uri="http://127.0.0.1:4000/cb",
        code_challenge=None,
        code_challenge_method=None,
    )

    response = authorize(browser, query)

    assert response.status_code == 302
    base, error = split(response.headers["location"])
    assert base == "http://127.0.0.1:4000/cb"
    assert error == {
        "error": "invalid_request",
        "error_description": "A public client must send a PKCE code_challenge.",
        "state": "xyz",
        "iss": setup.issuer,
    }


def test_confidential_client_may_omit_the_challenge(
    setup: Setup, browser: httpx.Client
) -> None:
    query = params(setup, code_challenge=None, code_challenge_method=None)

    response = authorize(browser, query)

    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?request=")


# Sessions, prompt and max_age.


def test_signed_in_with_consent_goes_straight_back(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    response = authorize(browser, params(setup, state="again"))

    assert_code(response, 302, setup, state="again")


def test_prompt_none_with_session_and_consent_issues_a_code(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    response = authorize(browser, params(setup, prompt="none"))

    assert_code(response, 302, setup)


def test_prompt_none_needing_consent_is_consent_required(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    response = authorize(browser, params(setup, prompt="none", scope="openid email"))

    assert split(response.headers["location"])[1] == {
        "error": "consent_required",
        "error_description": "The user has not consented to this request.",
        "state": "xyz",
        "iss": setup.issuer,
    }


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"prompt": "login"}, id="prompt=login"),
        pytest.param({"prompt": "select_account"}, id="prompt=select_account"),
        pytest.param({"max_age": "0"}, id="max_age=0"),
    ],
)
def test_fresh_login_is_forced(
    setup: Setup, browser: httpx.Client, changes: dict[str, str]
) -> None:
    signed_in_browser(setup, browser)

    started = authorize(browser, params(setup, **changes))
    assert started.status_code == 302
    assert started.headers["location"].startswith("/login?request=")
    # Going to the consent page instead does not skip the login.
    consent = browser.get(started.headers["location"].replace("/login?", "/consent?"))
    assert consent.status_code == 302
    assert consent.headers["location"] == started.headers["location"]

    login = sign_in(browser, started.headers["location"], setup.username)

    assert_code(login, 303, setup)


def test_long_max_age_accepts_the_session(setup: Setup, browser: httpx.Client) -> None:
    signed_in_browser(setup, browser)

    assert_code(authorize(browser, params(setup, max_age="3600")), 302, setup)


def test_public_client_with_challenge_gets_a_code(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)
    redirect_uri = "http://127.0.0.1:61000/cb"
    query = params(setup, client_id=setup.public_id, redirect_uri=redirect_uri)

    started = authorize(browser, query)
    assert started.headers["location"].startswith("/consent?request=")
    page = browser.get(started.headers["location"])
    # The form may end at the client: its origin, port and all.
    assert page.headers["content-security-policy"] == CSP + " http://127.0.0.1:61000"
    response = allow(browser, started.headers["location"])

    assert response.status_code == 303
    base, query_params = split(response.headers["location"])
    assert base == redirect_uri
    assert set(query_params) == {"code", "state", "iss"}


# The same request as a form (OIDC Core §3.1.2.1), answered with 303.


def test_posted_request_is_handled_like_a_get(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    response = browser.post("/oauth2/authorize", data=params(setup, state="posted"))

    assert_code(response, 303, setup, state="posted")


def test_posted_request_needing_login_goes_to_the_login_page(
    setup: Setup, browser: httpx.Client
) -> None:
    response = browser.post("/oauth2/authorize", data=params(setup))

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?request=")


def test_posted_error_is_redirected_with_303(
    setup: Setup, browser: httpx.Client
) -> None:
    response = browser.post(
        "/oauth2/authorize", data=params(setup, prompt="none", state="s")
    )

    assert response.status_code == 303
    base, query = split(response.headers["location"])
    assert base == REDIRECT
    assert query["error"] == "login_required"
    assert query["state"] == "s"


def test_posted_request_with_a_bad_redirect_uri_is_an_error_page(
    setup: Setup, browser: httpx.Client
) -> None:
    response = browser.post(
        "/oauth2/authorize",
        data=params(setup, redirect_uri="https://app.example.evil.test/cb"),
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The redirect_uri is not registered for this client." in response.text


def test_posted_request_that_is_not_a_form_is_an_error_page(
    setup: Setup, browser: httpx.Client
) -> None:
    response = browser.post("/oauth2/authorize", json=params(setup))

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The form was not sent as a form." in response.text
