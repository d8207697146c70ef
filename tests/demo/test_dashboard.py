"""The demo dashboard's own rules, through its HTTP interface: the session
cookie, state matching, CSRF on its forms, tokens kept off its pages, and
sign-out. The issuer's side answers from an in-process transport with keys
generated in ``test_oidc_client``; the real flow is in tests/e2e."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tessera.demo.dashboard import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    DashboardConfig,
    build_dashboard,
)
from tessera.demo.oidc_client import ProviderMetadata
from tests.demo.test_oidc_client import (
    CLIENT_ID,
    DISCOVERY,
    ISSUER,
    SIGNING_KEY,
    at_hash,
    sign,
)

BASE = "http://testserver"
REFRESH_TOKENS = ["rt-1", "rt-2", "rt-3"]


class Issuer:
    """Token and UserInfo endpoints that answer for whichever nonce the
    dashboard last sent, with a new access token each time."""

    def __init__(self) -> None:
        self.nonce = ""
        self.issued = 0
        self.token_forms: list[dict[str, list[str]]] = []
        self.refuse_refresh = False

    def access_token(self) -> str:
        return sign({"jti": f"at-{self.issued}", "sub": "user-1"}, typ="at+jwt")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth2/jwks":
            return httpx.Response(
                200, json={"keys": [SIGNING_KEY.as_dict(private=False)]}
            )
        if path == "/oauth2/userinfo":
            return httpx.Response(
                200, json={"sub": "user-1", "email": "alice@example.test"}
            )
        if path == "/oauth2/token":
            form = parse_qs(request.content.decode())
            self.token_forms.append(form)
            if self.refuse_refresh and form["grant_type"] == ["refresh_token"]:
                return httpx.Response(400, json={"error": "invalid_grant"})
            self.issued += 1
            access = self.access_token()
            now = int(time.time())
            claims = {
                "iss": ISSUER,
                "sub": "user-1",
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": self.nonce,
                "preferred_username": "alice",
                "at_hash": at_hash(access),
            }
            return httpx.Response(
                200,
                json={
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": 900,
                    "refresh_token": REFRESH_TOKENS[self.issued - 1],
                    "id_token": sign(claims),
                },
            )
        return httpx.Response(404)


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
async def browser(issuer: Issuer) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard, started, and a client that keeps its cookies."""
    config = DashboardConfig(issuer=ISSUER, client_id=CLIENT_ID, base_url=BASE)
    metadata = ProviderMetadata.parse(DISCOVERY, ISSUER)
    async with httpx.AsyncClient(transport=httpx.MockTransport(issuer)) as http:
        app = build_dashboard(config, metadata=metadata, http=http)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE
            ) as client,
        ):
            yield client


async def start_login(browser: httpx.AsyncClient, issuer: Issuer) -> dict[str, str]:
    response = await browser.get("/login")
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    issuer.nonce = query["nonce"][0]
    return {name: values[0] for name, values in query.items()}


async def sign_in(browser: httpx.AsyncClient, issuer: Issuer) -> None:
    query = await start_login(browser, issuer)
    response = await browser.get(
        "/callback", params={"code": "c1", "state": query["state"]}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


async def test_signed_out_home_offers_sign_in(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/")

    assert response.status_code == 200
    assert "Sign in" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_login_sets_a_lax_httponly_session_cookie(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    response = await browser.get("/login")

    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(SESSION_COOKIE + "=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert response.headers["location"].startswith(f"{ISSUER}/oauth2/authorize?")


async def test_sign_in_shows_claims_and_never_a_token(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    await sign_in(browser, issuer)

    page = (await browser.get("/")).text

    assert "Signed in as alice" in page
    assert "alice@example.test" in page
    assert 'data-claim="jti">at-1<' in page
    assert issuer.access_token() not in page
    assert "rt-1" not in page
    assert issuer.token_forms[0]["code_verifier"]


async def test_sign_in_replaces_the_session_cookie(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    await start_login(browser, issuer)
    before = browser.cookies[SESSION_COOKIE]

    await sign_in(browser, issuer)

    assert browser.cookies[SESSION_COOKIE] != before


@pytest.mark.parametrize("state", ["forged", ""], ids=["other", "empty"])
async def test_callback_with_another_state_is_refused(
    browser: httpx.AsyncClient, issuer: Issuer, state: str
) -> None:
    await start_login(browser, issuer)

    response = await browser.get("/callback", params={"code": "c1", "state": state})

    assert response.status_code == 400
    assert issuer.token_forms == []


async def test_callback_in_another_browser_is_refused(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    query = await start_login(browser, issuer)
    browser.cookies.clear()

    response = await browser.get(
        "/callback", params={"code": "c1", "state": query["state"]}
    )

    assert response.status_code == 400
    assert issuer.token_forms == []


async def test_callback_answers_once(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    query = await start_login(browser, issuer)
    params = {"code": "c1", "state": query["state"]}
    await browser.get("/callback", params=params)

    response = await browser.get("/callback", params=params)

    assert response.status_code == 400
    assert len(issuer.token_forms) == 1


async def test_refused_consent_is_shown(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    query = await start_login(browser, issuer)

    response = await browser.get(
        "/callback", params={"error": "access_denied", "state": query["state"]}
    )

    assert response.status_code == 400
    assert "access_denied" in response.text


async def test_refresh_rotates_the_refresh_token(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    await sign_in(browser, issuer)
    csrf = csrf_of((await browser.get("/")).text)

    for expected in ("rt-1", "rt-2"):
        response = await browser.post("/refresh", data={"csrf": csrf})
        assert response.status_code == 303
        assert issuer.token_forms[-1]["refresh_token"] == [expected]

    assert 'data-claim="jti">at-3<' in (await browser.get("/")).text


async def test_ended_grant_signs_the_dashboard_out(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    await sign_in(browser, issuer)
    csrf = csrf_of((await browser.get("/")).text)
    issuer.refuse_refresh = True

    response = await browser.post("/refresh", data={"csrf": csrf})

    assert response.status_code == 502
    assert "Signed in" not in (await browser.get("/")).text


FORGED_POSTS: list[Any] = [
    pytest.param({}, {}, id="no-token"),
    pytest.param({"csrf": "guessed"}, {}, id="wrong-token"),
    pytest.param(None, {"origin": "https://evil.example.test"}, id="other-origin"),
]


@pytest.mark.parametrize("path", ["/refresh", "/logout"])
@pytest.mark.parametrize(("form", "headers"), FORGED_POSTS)
async def test_forged_form_is_refused(
    browser: httpx.AsyncClient,
    issuer: Issuer,
    path: str,
    form: dict[str, str] | None,
    headers: dict[str, str],
) -> None:
    await sign_in(browser, issuer)
    csrf = csrf_of((await browser.get("/")).text)
    issued = issuer.issued

    response = await browser.post(
        path, data={"csrf": csrf} if form is None else form, headers=headers
    )

    assert response.status_code == 403
    assert issuer.issued == issued
    assert "Signed in as alice" in (await browser.get("/")).text


async def test_csrf_cookie_is_httponly_and_lax(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    await sign_in(browser, issuer)

    response = await browser.get("/")

    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(CSRF_COOKIE + "=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


async def test_sign_out_goes_to_the_issuer_and_back(
    browser: httpx.AsyncClient, issuer: Issuer
) -> None:
    await sign_in(browser, issuer)
    csrf = csrf_of((await browser.get("/")).text)

    response = await browser.post("/logout", data={"csrf": csrf})

    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/oauth2/logout"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["post_logout_redirect_uri"] == f"{BASE}/signed-out"
    assert query["id_token_hint"].count(".") == 2
    assert "Sign in" in (await browser.get("/")).text

    back = await browser.get("/signed-out", params={"state": query["state"]})
    assert "Tessera has ended your sign-in session too" in back.text
