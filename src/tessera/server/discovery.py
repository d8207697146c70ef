"""Authorization server metadata (RFC 8414), which is also the OpenID
Provider metadata (OpenID Connect Discovery §3), and the JWKS (RFC 7517)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tessera.core.client_assertion import ALGORITHMS as ASSERTION_ALGORITHMS
from tessera.core.client_auth import PUBLIC
from tessera.core.errors import MethodNotAllowed
from tessera.core.id_tokens import ID_TOKEN_ALG
from tessera.core.token_endpoint import SUPPORTED_GRANT_TYPES
from tessera.keys.signing import ALGORITHMS
from tessera.server.runtime import Runtime

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
# A public client identifies itself at the token and revocation endpoints
# (RFC 7009 §2.1), but may not introspect.
PUBLIC_AUTH_METHODS = [*AUTH_METHODS, PUBLIC]
# What a private_key_jwt assertion may be signed with (RFC 8414 §2).
AUTH_SIGNING_ALGS = sorted(ASSERTION_ALGORITHMS)
# OIDC Core §5.4's scopes, and the claims they and the ID token carry.
OPENID_SCOPES = ["openid", "profile", "email", "offline_access"]
CLAIMS = [
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
]


def metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "scopes_supported": OPENID_SCOPES,
        "claims_supported": CLAIMS,
        "grant_types_supported": sorted(SUPPORTED_GRANT_TYPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207: the authorization response names its issuer.
        "authorization_response_iss_parameter_supported": True,
        # OIDC Discovery §3 makes request_uri supported unless said otherwise.
        "request_uri_parameter_supported": False,
        "token_endpoint_auth_methods_supported": PUBLIC_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": PUBLIC_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "access_token_signing_alg_values_supported": list(ALGORITHMS),
    }


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: a list of tags, weak comparison, or ``*``."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _method_not_allowed() -> Response:
    error = MethodNotAllowed()
    return JSONResponse(
        error.to_dict(),
        error.status,
        {"Allow": "GET, HEAD", "Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def server_metadata(request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed()
    runtime: Runtime = request.app.state.runtime
    max_age = runtime.settings.jwks_max_age
    return JSONResponse(
        metadata(runtime.settings.issuer),
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )


async def jwks(request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed()
    runtime: Runtime = request.app.state.runtime
    body, etag = runtime.minter.keyring.jwks(runtime.clock())
    headers = {
        "Cache-Control": f"public, max-age={runtime.settings.jwks_max_age}",
        "ETag": etag,
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type="application/json")
