"""Authorization server metadata (RFC 8414) and the JWKS (RFC 7517)."""

from __future__ import annotations

import httpx
import pytest
from joserfc.jwk import import_key

from tests.support import RunningServer

METADATA_PATHS = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
# A public client has no credentials: it names itself at the token and
# revocation endpoints, and may not introspect.
PUBLIC_AUTH_METHODS = [*AUTH_METHODS, "none"]
# What a private_key_jwt assertion may be signed with; never none or HS*.
AUTH_SIGNING_ALGS = ["ES256", "EdDSA", "PS256", "RS256"]
# RFC 7517 §9.3, RFC 7518 §6: what only a private key has.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
KEY_SHAPES = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "RS256": {"kty": "RSA"},
    "PS256": {"kty": "RSA"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
}


@pytest.mark.parametrize("path", METADATA_PATHS)
def test_metadata_names_the_issuer_and_its_endpoints(
    server: RunningServer, http: httpx.Client, path: str
) -> None:
    response = http.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    issuer = server.base_url
    assert response.json() == {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/oauth2/authorize",
        "token_endpoint": issuer + "/oauth2/token",
        "userinfo_endpoint": issuer + "/oauth2/userinfo",
        "jwks_uri": issuer + "/oauth2/jwks",
        "introspection_endpoint": issuer + "/oauth2/introspect",
        "revocation_endpoint": issuer + "/oauth2/revoke",
        "end_session_endpoint": issuer + "/oauth2/logout",
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "azp",
            "at_hash",
            "name",
            "preferred_username",
            "email",
        ],
        "grant_types_supported": [
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        # OIDC Discovery §3: RS256 must be among them; it is the only one.
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "token_endpoint_auth_methods_supported": PUBLIC_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": PUBLIC_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "access_token_signing_alg_values_supported": [
            "ES256",
            "RS256",
            "PS256",
            "EdDSA",
        ],
    }


@pytest.mark.parametrize("path", [*METADATA_PATHS, "/oauth2/jwks"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_discovery_is_read_only(http: httpx.Client, path: str, method: str) -> None:
    response = http.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The request method is not allowed.",
    }


def test_jwks_publishes_public_keys_only(
    http: httpx.Client, alg_clients: dict[str, str]
) -> None:
    response = http.get("/oauth2/jwks")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert {key["alg"] for key in keys} >= set(alg_clients)
    assert len({key["kid"] for key in keys}) == len(keys)
    for key in keys:
        assert key["use"] == "sig"
        assert key.items() >= KEY_SHAPES[key["alg"]].items()
        assert not PRIVATE_MEMBERS & key.keys(), key["kid"]
        # The kid is the key's RFC 7638 thumbprint, so it names one key.
        assert import_key(key).thumbprint() == key["kid"]


def test_jwks_is_revalidated_with_its_etag(http: httpx.Client) -> None:
    first = http.get("/oauth2/jwks")
    etag = first.headers["etag"]

    unchanged = http.get("/oauth2/jwks", headers={"If-None-Match": etag})
    changed = http.get("/oauth2/jwks", headers={"If-None-Match": '"stale"'})

    assert etag.startswith('"') and etag.endswith('"')
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert unchanged.headers["cache-control"] == "public, max-age=300"
    assert changed.status_code == 200
    assert changed.content == first.content


def test_unknown_path_is_not_an_oauth_endpoint(http: httpx.Client) -> None:
    # Dynamic client registration (RFC 7591) is not offered.
    assert http.get("/oauth2/register").status_code == 404
