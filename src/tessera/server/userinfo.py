"""``/oauth2/userinfo`` over HTTP (OIDC Core §5.3.1: GET and POST), with the
RFC 6750 §3 challenges: a bare one when the request has no bearer token,
``invalid_token`` (401) and ``insufficient_scope`` (403) otherwise."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tessera.core.errors import (
    InsufficientScope,
    MethodNotAllowed,
    OAuthError,
    RequestTooLarge,
    TemporarilyUnavailable,
)
from tessera.core.form import Form
from tessera.core.userinfo import MissingToken
from tessera.server.runtime import Runtime

logger = logging.getLogger("tessera.server")

_CHALLENGE = 'Bearer realm="tessera"'
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM_TYPE = "application/x-www-form-urlencoded"


async def userinfo(request: Request) -> Response:
    if request.method not in ("GET", "POST"):
        return _error(MethodNotAllowed(), {"Allow": "GET, POST"})
    runtime: Runtime = request.app.state.runtime
    try:
        body_token = await posted_token(request, runtime.settings.max_body_bytes)
        claims = await runtime.userinfo.claims(
            request.headers.get("authorization"), body_token
        )
    except MissingToken:
        return Response(
            status_code=401, headers={"WWW-Authenticate": _CHALLENGE, **_NO_STORE}
        )
    except OAuthError as error:
        logger.debug("userinfo refused: %s: %s", error.error, error.detail)
        return _error(error, {"WWW-Authenticate": challenge(error)})
    except (SQLAlchemyError, OSError) as error:
        logger.warning("store unavailable: %s", type(error).__name__)
        unavailable = TemporarilyUnavailable()
        return _error(unavailable, {"Retry-After": str(unavailable.retry_after)})
    return JSONResponse(claims, headers=_NO_STORE)


async def posted_token(request: Request, max_bytes: int) -> str | None:
    """``access_token`` of a posted form (RFC 6750 §2.2); a query string's
    is never read (§2.3: it ends up in logs)."""
    media_type = request.headers.get("content-type", "").partition(";")[0]
    if request.method != "POST" or media_type.strip().lower() != _FORM_TYPE:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise RequestTooLarge()
    return Form.parse(body).get("access_token")


def challenge(error: OAuthError) -> str:
    """RFC 6750 §3: the error, its description and, for a missing scope, the
    scope that would do. Descriptions are ours and hold no quote or
    backslash, so they need no escaping."""
    value = f'{_CHALLENGE}, error="{error.error}"'
    value += f', error_description="{error.description}"'
    if isinstance(error, InsufficientScope):
        value += f', scope="{" ".join(sorted(error.scopes))}"'
    return value


def _error(error: OAuthError, headers: dict[str, str]) -> Response:
    return JSONResponse(error.to_dict(), error.status, {**headers, **_NO_STORE})
