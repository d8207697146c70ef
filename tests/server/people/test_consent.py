"""The consent page: remembered, widened, revoked, denied, used once."""

from __future__ import annotations

import httpx

from tessera.store.consents import ConsentRepository
from tests.server.people.helpers import (
    CSRF_FIELD,
    REDIRECT,
    REQUEST_FIELD,
    Sessions,
    Setup,
    allow,
    assert_code,
    authorize,
    field,
    in_store,
    params,
    sign_in,
    signed_in_browser,
    split,
)


def test_consent_is_remembered_then_revoked(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)
    # A subset of what was granted needs no new consent.
    assert_code(authorize(browser, params(setup, scope="read")), 302, setup)

    async def revoke(sessions: Sessions) -> bool:
        return await ConsentRepository(sessions).revoke(setup.user_id, setup.client_id)

    assert in_store(setup, revoke)
    response = authorize(browser, params(setup))

    assert response.headers["location"].startswith("/consent?request=")


def test_consent_for_more_scopes_is_asked_again_and_united(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    wider = authorize(browser, params(setup, scope="openid email"))
    assert wider.headers["location"].startswith("/consent?request=")
    page = browser.get(wider.headers["location"])
    assert "See your email address" in page.text
    assert_code(allow(browser, wider.headers["location"]), 303, setup)

    assert_code(authorize(browser, params(setup, scope="read email")), 302, setup)


def test_prompt_consent_asks_even_when_remembered(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    response = authorize(browser, params(setup, prompt="consent"))

    assert response.headers["location"].startswith("/consent?request=")


def test_deny_is_access_denied(setup: Setup, browser: httpx.Client) -> None:
    started = authorize(browser, params(setup, scope="openid profile", state="d"))
    login = sign_in(browser, started.headers["location"], setup.username)

    response = allow(browser, login.headers["location"], decision="deny")

    assert response.status_code == 303
    assert split(response.headers["location"]) == (
        REDIRECT,
        {
            "error": "access_denied",
            "error_description": "The resource owner denied the request.",
            "state": "d",
            "iss": setup.issuer,
        },
    )


def test_consent_form_is_used_once(setup: Setup, browser: httpx.Client) -> None:
    started = authorize(browser, params(setup, scope="openid profile"))
    login = sign_in(browser, started.headers["location"], setup.username)
    page = browser.get(login.headers["location"])
    form = {
        "csrf_token": field(CSRF_FIELD, page.text),
        "request": field(REQUEST_FIELD, page.text),
        "decision": "allow",
    }

    first = browser.post("/consent", data=form)
    second = browser.post("/consent", data=form)

    assert_code(first, 303, setup)
    assert second.status_code == 400
    assert "location" not in second.headers


def test_consent_without_the_csrf_token_is_refused(
    setup: Setup, browser: httpx.Client
) -> None:
    started = authorize(browser, params(setup, scope="openid profile"))
    login = sign_in(browser, started.headers["location"], setup.username)
    page = browser.get(login.headers["location"])

    response = browser.post(
        "/consent",
        data={"request": field(REQUEST_FIELD, page.text), "decision": "allow"},
    )

    assert response.status_code == 403
    assert "location" not in response.headers
    # Nothing was used up: the same page still works.
    assert_code(allow(browser, login.headers["location"]), 303, setup)


def test_unknown_request_id_is_an_error_page(browser: httpx.Client) -> None:
    for path in ("/login?request=nope", "/consent?request=nope"):
        response = browser.get(path)

        assert response.status_code == 400
        assert "has expired or is unknown" in response.text
