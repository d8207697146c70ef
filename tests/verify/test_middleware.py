"""The RFC 6750 §3 wire contract of ``protect``, pinned through the demo API."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tessera.demo.api import build_demo_api
from tessera.verify import Verifier, protect

from .conftest import (
    AUDIENCE,
    NOW,
    Keys,
    claims,
    closed_port_url,
    mint,
)

BARE = 'Bearer realm="tessera"'
INVALID_TOKEN = (
    'Bearer realm="tessera", error="invalid_token", '
    'error_description="The access token is invalid."'
)


def invalid_request(description: str) -> str:
    return (
        'Bearer realm="tessera", error="invalid_request", '
        f'error_description="{description}"'
    )


@dataclass(frozen=True)
class Case:
    """One request and the exact answer it gets."""

    id: str
    path: str
    headers: Callable[[Keys], list[tuple[str, str]]]
    status: int
    challenge: str | None
    body: dict[str, str] | None
    query: str = ""

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


def valid(keys: Keys, **changes: Any) -> str:
    return mint(keys["ES256"], claims(**changes))


def auth(value: Callable[[Keys], str] | str) -> Callable[[Keys], list[tuple[str, str]]]:
    if isinstance(value, str):
        return lambda keys: [("authorization", value)]
    return lambda keys: [("authorization", value(keys))]


def error(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


TOKEN_INVALID = error("invalid_token", "The access token is invalid.")

CASES = [
    Case("no-authorization", "/hello", lambda k: [], 401, BARE, None),
    Case("basic-scheme", "/hello", auth("Basic dXNlcjpwYXNz"), 401, BARE, None),
    Case("digest-scheme", "/hello", auth('Digest username="u"'), 401, BARE, None),
    Case("empty-authorization", "/hello", auth(""), 401, BARE, None),
    Case("bearer-glued", "/hello", auth("Bearerabc.def.ghi"), 401, BARE, None),
    Case(
        "bearer-without-token",
        "/hello",
        auth("Bearer"),
        400,
        invalid_request("The bearer token is missing."),
        error("invalid_request", "The bearer token is missing."),
    ),
    Case(
        "bearer-space-only",
        "/hello",
        auth("Bearer   "),
        400,
        invalid_request("The bearer token is missing."),
        error("invalid_request", "The bearer token is missing."),
    ),
    Case(
        "token-with-space",
        "/hello",
        auth("Bearer abc def"),
        400,
        invalid_request("The bearer token is malformed."),
        error("invalid_request", "The bearer token is malformed."),
    ),
    Case(
        "token-with-quote",
        "/hello",
        auth('Bearer abc"def'),
        400,
        invalid_request("The bearer token is malformed."),
        error("invalid_request", "The bearer token is malformed."),
    ),
    Case(
        "token-padding-inside",
        "/hello",
        auth("Bearer abc=def"),
        400,
        invalid_request("The bearer token is malformed."),
        error("invalid_request", "The bearer token is malformed."),
    ),
    Case(
        "two-authorization-headers",
        "/hello",
        lambda k: [("authorization", "Bearer " + valid(k))] * 2,
        400,
        invalid_request("The request has more than one Authorization header."),
        error("invalid_request", "The request has more than one Authorization header."),
    ),
    Case(
        "token-in-query-too",
        "/hello",
        auth(lambda k: "Bearer " + valid(k)),
        400,
        invalid_request("Access tokens are not accepted in the URL."),
        error("invalid_request", "Access tokens are not accepted in the URL."),
        query="access_token=abc",
    ),
    Case(
        "token-in-query-only",
        "/hello",
        lambda k: [],
        400,
        invalid_request("Access tokens are not accepted in the URL."),
        error("invalid_request", "Access tokens are not accepted in the URL."),
        query="x=1&access%5Ftoken=",
    ),
    Case(
        "garbage-token",
        "/hello",
        auth("Bearer abc"),
        401,
        INVALID_TOKEN,
        TOKEN_INVALID,
    ),
    Case(
        "b64token-but-not-jwt",
        "/hello",
        auth("Bearer a~b+c/d=="),
        401,
        INVALID_TOKEN,
        TOKEN_INVALID,
    ),
    Case(
        "expired-token",
        "/hello",
        auth(lambda k: "Bearer " + valid(k, exp=NOW - 60)),
        401,
        INVALID_TOKEN,
        TOKEN_INVALID,
    ),
    Case(
        "wrong-audience",
        "/hello",
        auth(lambda k: "Bearer " + valid(k, aud="https://other.example")),
        401,
        INVALID_TOKEN,
        TOKEN_INVALID,
    ),
    Case(
        "bad-signature",
        "/admin",
        auth(lambda k: "Bearer " + mint(k["attacker-ES256"])),
        401,
        INVALID_TOKEN,
        TOKEN_INVALID,
    ),
    Case(
        "admin-without-scope",
        "/admin",
        auth(lambda k: "Bearer " + valid(k)),
        403,
        'Bearer realm="tessera", error="insufficient_scope", '
        'error_description="The access token lacks the required scope.", '
        'scope="demo.admin"',
        error("insufficient_scope", "The access token lacks the required scope."),
    ),
]


@pytest.fixture
async def client(verifier: Verifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_demo_api(verifier))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test"
    ) as client:
        yield client


@pytest.mark.parametrize("case", [case.param() for case in CASES])
async def test_refused_requests(
    case: Case, client: httpx.AsyncClient, keys: Keys
) -> None:
    url = case.path + ("?" + case.query if case.query else "")

    response = await client.get(url, headers=case.headers(keys))

    assert response.status_code == case.status
    assert response.headers.get_list("www-authenticate") == [case.challenge]
    assert response.headers["cache-control"] == "no-store"
    if case.body is None:
        assert response.content == b""
        assert "content-type" not in response.headers
    else:
        assert response.headers["content-type"] == "application/json"
        assert response.json() == case.body


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_hello_with_a_valid_token(
    scheme: str, client: httpx.AsyncClient, keys: Keys
) -> None:
    response = await client.get(
        "/hello", headers={"Authorization": f"{scheme} {valid(keys)}"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "message": "hello",
        "client_id": "client-7",
        "sub": "user-42",
        "scope": "demo.read demo.write",
    }
    assert "www-authenticate" not in response.headers


async def test_admin_with_the_admin_scope(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    token = valid(keys, scope="demo.read demo.admin")

    response = await client.get("/admin", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json() == {"message": "hello, demo.admin", "client_id": "client-7"}


async def test_healthz_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_unreachable_issuer_is_503_with_retry_after(keys: Keys) -> None:
    issuer = closed_port_url()
    async with Verifier(issuer, AUDIENCE) as verifier:
        transport = httpx.ASGITransport(app=build_demo_api(verifier))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test"
        ) as client:
            token = mint(keys["ES256"], claims(iss=issuer))
            response = await client.get(
                "/hello", headers={"Authorization": f"Bearer {token}"}
            )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"
    assert "www-authenticate" not in response.headers
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "The service is temporarily unavailable.",
    }


# protect() on a bare ASGI application ----------------------------------------


async def record_state(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps({"sub": scope["state"]["access_token"].subject}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_access_token_is_handed_on_in_scope_state(
    verifier: Verifier, keys: Keys
) -> None:
    app = protect(record_state, verifier)
    messages: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {valid(keys)}".encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)

    assert scope["state"]["access_token"].client_id == "client-7"
    assert messages[1]["body"] == b'{"sub": "user-42"}'


async def test_realm_is_a_quoted_string(verifier: Verifier) -> None:
    app = protect(record_state, verifier, realm='a "quoted" \\ realm')
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/")

    assert response.headers["www-authenticate"] == (
        'Bearer realm="a \\"quoted\\" \\\\ realm"'
    )


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"scopes": "demo.admin"}, TypeError, id="scopes-string"),
        pytest.param({"scopes": ['a"b']}, ValueError, id="scope-with-quote"),
        pytest.param({"scopes": ["a b"]}, ValueError, id="scope-with-space"),
        pytest.param({"realm": "réalm"}, ValueError, id="realm-not-ascii"),
        pytest.param({"realm": "a\r\nb"}, ValueError, id="realm-newline"),
    ],
)
def test_unsafe_options_are_refused(
    options: dict[str, Any], error: type[Exception], verifier: Verifier
) -> None:
    with pytest.raises(error):
        protect(record_state, verifier, **options)


async def test_lifespan_passes_through(verifier: Verifier) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await protect(app, verifier)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]

    assert seen == ["lifespan"]


async def test_websocket_without_token_is_closed(verifier: Verifier) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("must not be reached")

    scope = {"type": "websocket", "path": "/", "query_string": b"", "headers": []}
    await protect(app, verifier)(scope, None, send)  # type: ignore[arg-type]

    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_refusals_are_logged_without_the_token(
    client: httpx.AsyncClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    token = valid(keys, exp=NOW - 60)

    with caplog.at_level(logging.DEBUG, logger="tessera.verify"):
        await client.get("/hello", headers={"Authorization": f"Bearer {token}"})

    assert "bearer token refused: invalid_token: expired" in caplog.text
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text
