"""Cookies when the issuer is https: Secure, and named __Host- so that no
sibling subdomain can plant one. The server still listens on loopback
http, so the test sends the cookies itself (a cookie jar would keep Secure
cookies off plain http)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.people.helpers import (
    CHALLENGE,
    CSRF_FIELD,
    PASSWORD,
    REDIRECT,
    REQUEST_FIELD,
    field,
)
from tests.support import RunningServer, running

ISSUER = "https://login.example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("secure-cookies")
    yield from running(data_dir, TESSERA_ISSUER=ISSUER)


@pytest.fixture(scope="module")
def login_page(server: RunningServer) -> tuple[httpx.Response, str]:
    server.create_web_client("web", redirect_uris=(REDIRECT,))
    server.create_user("ada", PASSWORD)
    with httpx.Client(base_url=server.base_url) as http:
        started = http.get(
            "/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": "web",
                "redirect_uri": REDIRECT,
                "scope": "openid",
                "code_challenge": CHALLENGE,
                "code_challenge_method": "S256",
            },
        )
        assert started.status_code == 302, started.text
        page = http.get(started.headers["location"])
    assert page.status_code == 200, page.text
    return page, field(REQUEST_FIELD, page.text)


def login(
    server: RunningServer, request_id: str, csrf: str, cookie_header: str
) -> httpx.Response:
    with httpx.Client(base_url=server.base_url) as http:
        return http.post(
            "/login",
            data={
                "request": request_id,
                "csrf_token": csrf,
                "username": "ada",
                "password": PASSWORD,
            },
            headers={"Cookie": cookie_header},
        )


def test_the_csrf_cookie_is_secure_and_host_prefixed(
    login_page: tuple[httpx.Response, str],
) -> None:
    page, _ = login_page
    (header,) = page.headers.get_list("set-cookie")
    name_value, *attributes = header.split("; ")

    assert name_value.split("=", 1)[0] == "__Host-tessera_csrf"
    assert attributes == [
        "Max-Age=86400",
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    ]


def test_the_session_cookie_is_secure_and_host_prefixed(
    server: RunningServer, login_page: tuple[httpx.Response, str]
) -> None:
    page, request_id = login_page
    csrf = field(CSRF_FIELD, page.text)

    response = login(server, request_id, csrf, f"__Host-tessera_csrf={csrf}")

    assert response.status_code == 303, response.text
    cookies = {
        header.split("=", 1)[0]: header.split("; ")[1:]
        for header in response.headers.get_list("set-cookie")
    }
    assert cookies["__Host-tessera_session"] == [
        "Max-Age=28800",
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    ]
    assert "tessera_session" not in cookies


def test_a_csrf_cookie_without_the_prefix_is_not_read(
    server: RunningServer, login_page: tuple[httpx.Response, str]
) -> None:
    page, request_id = login_page
    csrf = field(CSRF_FIELD, page.text)

    response = login(server, request_id, csrf, f"tessera_csrf={csrf}")

    assert response.status_code == 403
    assert "set-cookie" not in response.headers
