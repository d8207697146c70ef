"""Requests and checks shared by the tests of the browser side."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.cli.context import operator
from tessera.core.id_tokens import IdTokens
from tessera.node import open_node
from tests.support import RunningServer

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

REDIRECT = "https://app.example/cb"
NATIVE_V4 = "http://127.0.0.1/cb"
NATIVE_V6 = "http://[::1]/native"
LOCALHOST = "http://localhost/cb"
PRIVATE_USE = "com.example.app:/cb"
LOGGED_OUT = "https://app.example/signed-out"
# RFC 7636 Appendix B: a verifier and its S256 challenge.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PASSWORD = "correct horse battery"
WRONG_CREDENTIALS = "Wrong username or password."
CSP = (
    "default-src 'none'; style-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
REQUEST_FIELD = re.compile(r'name="request" value="([^"]+)"')


@dataclass(frozen=True)
class Setup:
    server: RunningServer
    client_id: str
    public_id: str
    no_grant_id: str
    username: str
    user_id: str

    @property
    def issuer(self) -> str:
        return self.server.base_url


def params(setup: Setup, **changes: str | None) -> dict[str, str]:
    """A valid request, with some parameters changed or (None) left out."""
    base: dict[str, str | None] = {
        "response_type": "code",
        "client_id": setup.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid read",
        "state": "xyz",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def authorize(browser: httpx.Client, query: Any) -> httpx.Response:
    return browser.get("/oauth2/authorize", params=query)


def in_store(setup: Setup, use: Callable[[Sessions], Awaitable[T]]) -> T:
    """Run ``use`` against the server's own database."""

    async def go() -> T:
        node = await open_node(setup.server.settings, time.time)
        try:
            return await use(node.sessions)
        finally:
            await node.close()

    return asyncio.run(go())


def split(location: str) -> tuple[str, dict[str, str]]:
    """A Location's URI without its query, and the query's parameters."""
    parts = urlsplit(location)
    base = parts._replace(query="").geturl()
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert all(len(v) == 1 for v in parse_qs(parts.query).values())
    return base, query


def field(pattern: re.Pattern[str], html: str) -> str:
    match = pattern.search(html)
    assert match, html
    return match.group(1)


def sign_in(
    browser: httpx.Client, location: str, username: str, password: str = PASSWORD
) -> httpx.Response:
    page = browser.get(location)
    assert page.status_code == 200, page.text
    form = {
        "csrf_token": field(CSRF_FIELD, page.text),
        "username": username,
        "password": password,
    }
    request_id = REQUEST_FIELD.search(page.text)
    if request_id:
        form["request"] = request_id.group(1)
    return browser.post("/login", data=form)


def allow(
    browser: httpx.Client, location: str, decision: str = "allow"
) -> httpx.Response:
    page = browser.get(location)
    assert page.status_code == 200, page.text
    return browser.post(
        "/consent",
        data={
            "csrf_token": field(CSRF_FIELD, page.text),
            "request": field(REQUEST_FIELD, page.text),
            "decision": decision,
        },
    )


def assert_code(
    response: httpx.Response, status: int, setup: Setup, state: str = "xyz"
) -> None:
    assert response.status_code == status, response.text
    base, query = split(response.headers["location"])
    assert base == REDIRECT
    assert set(query) == {"code", "state", "iss"}
    assert (query["state"], query["iss"]) == (state, setup.issuer)
    assert len(query["code"]) >= 43


def signed_in_browser(setup: Setup, browser: httpx.Client) -> None:
    """Log the browser in and grant the client openid and read."""
    started = authorize(browser, params(setup))
    login = sign_in(browser, started.headers["location"], setup.username)
    assert login.status_code == 303, login.text
    if login.headers["location"].startswith("/consent"):
        assert_code(allow(browser, login.headers["location"]), 303, setup)


def id_token(setup: Setup, *, subject: str) -> str:
    """An ID token for the client, signed with the server's own RS256 key,
    as the token endpoint issues them."""

    async def sign() -> str:
        async with operator(setup.server.settings) as op:
            await op.keys.ensure({"RS256"})
            ring = await op.keys.load()
        tokens = IdTokens(setup.issuer, lambda: ring, max_ttl=3600)
        return tokens.sign(
            client_id=setup.client_id,
            subject=subject,
            auth_time=int(time.time()),
            now=time.time(),
        )

    token = asyncio.run(sign())
    time.sleep(0.3)  # the server's change poll loads a new key
    return token
