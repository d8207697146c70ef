"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

import secrets

import httpx

from tests.server.people.helpers import (
    CSP,
    CSRF_FIELD,
    LOGGED_OUT,
    Setup,
    assert_code,
    authorize,
    field,
    id_token,
    params,
    signed_in_browser,
)


def test_logout_to_an_unregistered_uri_is_an_error_page(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    response = browser.get(
        "/oauth2/logout",
        params={
            "client_id": setup.client_id,
            "post_logout_redirect_uri": "https://app.example/elsewhere",
            "state": "bye",
        },
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The post_logout_redirect_uri is not registered" in response.text
    assert_code(authorize(browser, params(setup)), 302, setup)


def test_logout_without_a_client_cannot_redirect(browser: httpx.Client) -> None:
    response = browser.get(
        "/oauth2/logout", params={"post_logout_redirect_uri": LOGGED_OUT}
    )

    assert response.status_code == 400
    assert "location" not in response.headers


def test_logout_asks_then_ends_the_session(setup: Setup, browser: httpx.Client) -> None:
    signed_in_browser(setup, browser)
    query = {
        "client_id": setup.client_id,
        "post_logout_redirect_uri": LOGGED_OUT,
        "state": "bye",
    }

    page = browser.get("/oauth2/logout", params=query)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP + " https://app.example"
    response = browser.post(
        "/oauth2/logout",
        data={**query, "csrf_token": field(CSRF_FIELD, page.text)},
    )

    assert response.status_code == 303
    assert response.headers["location"] == LOGGED_OUT + "?state=bye"
    assert "tessera_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" in (
        response.headers.get_list("set-cookie")
    )
    assert authorize(browser, params(setup)).headers["location"].startswith("/login?")


def test_logout_confirmation_needs_the_csrf_token(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)

    response = browser.post("/oauth2/logout", data={"csrf_token": "forged"})

    assert response.status_code == 403
    assert_code(authorize(browser, params(setup)), 302, setup)


def test_logout_with_an_id_token_hint_needs_no_question(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)
    hint = id_token(setup, subject=setup.user_id)

    response = browser.get(
        "/oauth2/logout",
        params={
            "id_token_hint": hint,
            "post_logout_redirect_uri": LOGGED_OUT,
            "state": "bye",
        },
    )

    assert response.status_code == 302
    assert response.headers["location"] == LOGGED_OUT + "?state=bye"
    assert authorize(browser, params(setup)).headers["location"].startswith("/login?")


def test_logout_with_a_hint_for_someone_else_asks_first(
    setup: Setup, browser: httpx.Client
) -> None:
    signed_in_browser(setup, browser)
    hint = id_token(setup, subject="someone-else")

    response = browser.get(
        "/oauth2/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": LOGGED_OUT},
    )

    assert response.status_code == 200
    assert 'name="post_logout_redirect_uri" value="' + LOGGED_OUT in response.text
    assert_code(authorize(browser, params(setup)), 302, setup)


def test_logout_hint_and_client_id_must_agree(
    setup: Setup, browser: httpx.Client
) -> None:
    hint = id_token(setup, subject=setup.user_id)

    response = browser.get(
        "/oauth2/logout",
        params={"id_token_hint": hint, "client_id": setup.public_id},
    )

    assert response.status_code == 400
    assert "The client_id does not match the id_token_hint." in response.text


def test_an_access_token_is_no_id_token_hint(
    setup: Setup, browser: httpx.Client
) -> None:
    secret = setup.server.create_client(f"machine-{secrets.token_hex(4)}")
    client_id = next(c for c, s in setup.server.secrets.items() if s == secret)
    token = httpx.post(
        setup.server.url("/oauth2/token"),
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    ).json()["access_token"]

    response = browser.get("/oauth2/logout", params={"id_token_hint": token})

    assert response.status_code == 400
    assert "The id_token_hint is not a valid ID token." in response.text


def test_logout_with_an_invalid_hint_is_an_error_page(
    setup: Setup, browser: httpx.Client
) -> None:
    response = browser.get(
        "/oauth2/logout",
        params={"id_token_hint": "e30.e30.", "post_logout_redirect_uri": LOGGED_OUT},
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The id_token_hint is not a valid ID token." in response.text


def test_signed_out_page_without_a_redirect(browser: httpx.Client) -> None:
    response = browser.get("/oauth2/logout")

    assert response.status_code == 200
    assert "You are signed out." in response.text
