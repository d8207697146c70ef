"""Third-party clients, used as their documentation shows, against the real
server: Authlib fetches tokens, PyJWT verifies them from the JWKS URI."""

from __future__ import annotations

import asyncio
import secrets
import warnings

import httpx
import jwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

from tests.server.helpers import DEFAULT_AUDIENCE, DEFAULT_TTL, issue_token, unique
from tests.support import RunningServer

with warnings.catch_warnings():
    # Authlib announces at import that it will move from httpx to httpx2: a
    # notice about Authlib's own dependencies, not about how it is used here.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client


def check_token(
    token: dict[str, object], client_id: str, server: RunningServer
) -> None:
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == DEFAULT_TTL
    assert token["scope"] == "read write"
    claims = jwt.decode(
        str(token["access_token"]),
        jwt.PyJWKClient(server.url("/oauth2/jwks")).get_signing_key_from_jwt(
            str(token["access_token"])
        ),
        algorithms=["ES256"],
        audience=DEFAULT_AUDIENCE,
        issuer=server.base_url,
    )
    assert claims["client_id"] == client_id


@pytest.mark.parametrize(
    ("method", "prefix", "secret"),
    [
        pytest.param("client_secret_basic", "authlib", None, id="basic"),
        pytest.param("client_secret_post", "authlib", None, id="post"),
        # Form encoding makes anything safe in the body.
        pytest.param(
            "client_secret_post",
            "ci:deploy+x%ab",
            "s3:cr+t 100%/=&",
            id="post-with-reserved-characters",
        ),
    ],
)
def test_authlib_client_fetches_a_token(
    server: RunningServer, method: str, prefix: str, secret: str | None
) -> None:
    client_id = unique(prefix)
    if secret is not None:
        secret += secrets.token_hex(8)
    secret = server.create_client(client_id, secret=secret)

    with OAuth2Client(client_id, secret, token_endpoint_auth_method=method) as client:
        token = client.fetch_token(
            server.url("/oauth2/token"), grant_type="client_credentials"
        )

    check_token(token, client_id, server)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_async_client_fetches_a_token(
    server: RunningServer, method: str
) -> None:
    client_id = unique("authlib-async")
    secret = await asyncio.to_thread(server.create_client, client_id)

    async with AsyncOAuth2Client(
        client_id, secret, token_endpoint_auth_method=method
    ) as client:
        token = await client.fetch_token(
            server.url("/oauth2/token"), grant_type="client_credentials"
        )

    check_token(token, client_id, server)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_pyjwt_verifies_a_token_from_the_jwks_uri(
    server: RunningServer,
    http: httpx.Client,
    alg_clients: dict[str, str],
    alg: str,
) -> None:
    client_id = alg_clients[alg]
    token = issue_token(http, client_id, server.secrets[client_id])
    jwks_uri = http.get("/.well-known/oauth-authorization-server").json()["jwks_uri"]

    signing_key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key,
        algorithms=[alg],
        audience=DEFAULT_AUDIENCE,
        issuer=server.base_url,
    )

    assert signing_key.key_id == jwt.get_unverified_header(token)["kid"]
    assert claims["client_id"] == client_id
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            token,
            signing_key,
            algorithms=[alg],
            audience="https://elsewhere.example.test",
            issuer=server.base_url,
        )
