"""The login page: credentials, CSRF, the session cookie, lockout, and the
headers every page carries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tessera.store.models import BrowserSessionRow
from tests.server.people.helpers import (
    CSP,
    CSRF_FIELD,
    PASSWORD,
    REQUEST_FIELD,
    WRONG_CREDENTIALS,
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
)
from tests.support import RunningServer, running


def test_login_then_consent_then_code(setup: Setup, browser: httpx.Client) -> None:
    started = authorize(browser, params(setup, state="s-1"))
    assert started.status_code == 302
    login = sign_in(browser, started.headers["location"], setup.username)
    assert login.status_code == 303, login.text
    assert login.headers["location"].startswith("/consent?request=")

    consent = browser.get(login.headers["location"])
    assert consent.status_code == 200
    assert setup.client_id in consent.text
    assert "See your" not in consent.text
    assert "Know who you are on this server (your user id)" in consent.text
    assert "Use the permission “read”" in consent.text

    assert_code(allow(browser, login.headers["location"]), 303, setup, state="s-1")


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param(None, "wrong password", id="wrong password"),
        pytest.param("nobody-at-all", PASSWORD, id="unknown user"),
    ],
)
def test_failed_login_says_the_same_and_starts_no_session(
    setup: Setup, browser: httpx.Client, username: str | None, password: str
) -> None:
    started = authorize(browser, params(setup))

    response = sign_in(
        browser, started.headers["location"], username or setup.username, password
    )

    assert response.status_code == 400
    assert WRONG_CREDENTIALS in response.text
    assert 'aria-describedby="login-error"' in response.text
    assert "tessera_session" not in browser.cookies
    again = authorize(browser, params(setup))
    assert again.headers["location"].startswith("/login?")


@pytest.mark.parametrize(
    "token",
    [pytest.param(None, id="missing"), pytest.param("forged", id="wrong")],
)
def test_login_without_the_csrf_token_is_refused(
    setup: Setup, browser: httpx.Client, token: str | None
) -> None:
    started = authorize(browser, params(setup))
    page = browser.get(started.headers["location"])
    form = {
        "request": field(REQUEST_FIELD, page.text),
        "username": setup.username,
        "password": PASSWORD,
    }
    if token is not None:
        form["csrf_token"] = token

    response = browser.post("/login", data=form)

    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert "tessera_session" not in browser.cookies
    again = authorize(browser, params(setup))
    assert again.headers["location"].startswith("/login?")


def test_login_without_the_csrf_cookie_is_refused(
    setup: Setup, browser: httpx.Client
) -> None:
    started = authorize(browser, params(setup))
    page = browser.get(started.headers["location"])
    token = field(CSRF_FIELD, page.text)
    browser.cookies.clear()

    response = browser.post(
        "/login",
        data={"csrf_token": token, "username": setup.username, "password": PASSWORD},
    )

    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_login_sets_the_session_cookie_and_a_new_csrf_token(
    setup: Setup, browser: httpx.Client
) -> None:
    started = authorize(browser, params(setup))
    page = browser.get(started.headers["location"])
    before = field(CSRF_FIELD, page.text)

    response = sign_in(browser, started.headers["location"], setup.username)

    cookies = {
        header.split("=", 1)[0]: header
        for header in response.headers.get_list("set-cookie")
    }
    session = cookies["tessera_session"].split("; ")
    assert session[1:] == ["Max-Age=28800", "Path=/", "HttpOnly", "SameSite=Lax"]
    assert len(session[0].split("=", 1)[1]) == 43
    csrf = cookies["tessera_csrf"].split("; ")
    assert csrf[1:] == ["Max-Age=86400", "Path=/", "HttpOnly", "SameSite=Lax"]
    assert csrf[0] != f"tessera_csrf={before}"


def test_only_the_session_hash_is_stored(setup: Setup, browser: httpx.Client) -> None:
    signed_in_browser(setup, browser)
    value = browser.cookies["tessera_session"]

    async def stored(sessions: Sessions) -> list[str]:
        async with sessions() as session:
            rows = await session.scalars(select(BrowserSessionRow))
            return [row.session_hash for row in rows]

    hashes = in_store(setup, stored)

    assert hashlib.sha256(value.encode()).hexdigest() in hashes
    assert value not in hashes


# Headers.


def test_pages_send_the_security_headers(setup: Setup, browser: httpx.Client) -> None:
    started = authorize(browser, params(setup))

    page = browser.get(started.headers["location"])

    assert page.headers["content-security-policy"] == (CSP + " https://app.example")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<html lang="en">' in page.text
    assert '<label for="username">' in page.text
    assert '<label for="password">' in page.text
    assert "<script" not in page.text
    assert "style=" not in page.text


def test_error_pages_and_redirects_send_them_too(
    setup: Setup, browser: httpx.Client
) -> None:
    error_page = authorize(browser, params(setup, client_id="nobody"))
    redirected = authorize(browser, params(setup, response_type="token"))

    for response in (error_page, redirected):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"


def test_the_stylesheet_is_served(browser: httpx.Client) -> None:
    response = browser.get("/static/tessera.css")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert ":focus-visible" in response.text


# Login lockout, on a server of its own: it locks the source address.


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from running(
        tmp_path / "tessera",
        TESSERA_LOGIN_SLOWDOWN_AFTER="5",
        TESSERA_LOGIN_LOCKOUT_AFTER="2",
    )


def test_locked_login_is_429_with_retry_after(strict_server: RunningServer) -> None:
    strict_server.create_user("grace", PASSWORD)
    with strict_server.browser() as browser:
        for _ in range(2):
            assert sign_in(browser, "/login", "grace", "wrong").status_code == 400

        response = sign_in(browser, "/login", "grace", PASSWORD)

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "Too many sign-in attempts. Try again later." in response.text
    assert "tessera_session" not in browser.cookies
