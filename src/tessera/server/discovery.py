"""Authorization server metadata (RFC 8414) and the JWKS (RFC 7517)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tessera.core.client_assertion import ALGORITHMS as ASSERTION_ALGORITHMS
from tessera.core.errors import MethodNotAllowed
from tessera.core.token_endpoint import SUPPORTED_GRANT_TYPES
from tessera.keys.signing import ALGORITHMS
from tessera.server.runtime import Runtime

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
# What a private_key_jwt assertion may be signed with (RFC 8414 §2).
AUTH_SIGNING_ALGS = sorted(ASSERTION_ALGORITHMS)


def metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "grant_types_supported": sorted(SUPPORTED_GRANT_TYPES),
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": AUTH_SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
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
