"""Requests and checks shared by the HTTP protocol tests."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import quote_plus

import httpx
import jwt

from tessera.cli.context import operator
from tessera.keys.signing import SigningKey
from tests.support import RunningServer

FORM = "application/x-www-form-urlencoded"
GRANT = "grant_type=client_credentials"
DEFAULT_AUDIENCE = "https://api.example.test"
DEFAULT_TTL = 900
MAX_TTL = 3600
BASIC_CHALLENGE = 'Basic realm="tessera", charset="UTF-8"'
AUTH_FAILED = "Client authentication failed."


def unique(prefix: str) -> str:
    """A client id no other test on the session server uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


def basic(client_id: str, secret: str) -> str:
    """An Authorization value as RFC 6749 §2.3.1 builds it: each part
    form-urlencoded, then joined with a colon and base64-encoded."""
    return raw_basic(f"{quote_plus(client_id)}:{quote_plus(secret)}")


def raw_basic(text: str | bytes) -> str:
    """An Authorization value of ``text`` base64-encoded as it is, the way
    a client that skips the form-urlencoding step builds it."""
    data = text.encode() if isinstance(text, str) else text
    return "Basic " + base64.b64encode(data).decode()


def issue_token(http: httpx.Client, client_id: str, secret: str, **form: str) -> str:
    """An access token for the client, through client_secret_basic."""
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **form},
        headers={"Authorization": basic(client_id, secret)},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def assert_no_store(response: httpx.Response) -> None:
    """RFC 6749 §5.1 and §5.2: token and error responses are not cached."""
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def assert_error(
    response: httpx.Response, status: int, error: str, description: str
) -> None:
    """The exact wire form of an OAuth error response."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    assert response.json() == {"error": error, "error_description": description}


def jwks(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/oauth2/jwks")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def issuer(http: httpx.Client) -> str:
    return str(http.base_url).rstrip("/")


def verify(http: httpx.Client, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a token whose signature checks out against
    the published key its ``kid`` names, with the algorithm that key is for."""
    header = jwt.get_unverified_header(token)
    published = {key["kid"]: key for key in jwks(http)["keys"]}
    jwk = published[header["kid"]]
    claims = jwt.decode(
        token,
        jwt.PyJWK.from_dict(jwk).key,
        algorithms=[jwk["alg"]],
        issuer=issuer(http),
        options={"verify_aud": False},
    )
    return header, claims


def b64url(data: bytes | dict[str, Any]) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_claims(
    server: RunningServer, client_id: str, **changes: Any
) -> dict[str, Any]:
    """Claims shaped like the ones the server issues to the client."""
    now = int(time.time())
    return {
        "iss": server.base_url,
        "sub": client_id,
        "aud": DEFAULT_AUDIENCE,
        "exp": now + 600,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": "read write",
        **changes,
    }


def load_signing_key(server: RunningServer) -> SigningKey:
    """The server's own current ES256 key, read from its store."""

    async def load() -> SigningKey:
        async with operator(server.settings) as op:
            ring = await op.keys.load()
            return ring.signing_key("ES256", time.time())

    return asyncio.run(load())


def sign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    """A token signed with the server's key, for claims or headers the
    server would never issue itself."""
    return jwt.encode(
        claims,
        key.private_key,
        algorithm="ES256",
        headers={"kid": key.kid, "typ": "at+jwt", **header},
    )
