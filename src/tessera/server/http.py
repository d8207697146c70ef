"""Request reading and response writing shared by every endpoint."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from tessera.core.errors import (
    InvalidClient,
    InvalidRequest,
    MethodNotAllowed,
    OAuthError,
    RequestTooLarge,
    ServerError,
    TemporarilyUnavailable,
)
from tessera.core.form import Form

logger = logging.getLogger("tessera.server")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM_TYPE = "application/x-www-form-urlencoded"

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = json.dumps(body, separators=(",", ":")).encode()
    return Response(content, status, headers, media_type="application/json")


def error_response(error: OAuthError, allow: str = "POST") -> Response:
    headers = dict(NO_STORE)
    if isinstance(error, InvalidClient) and error.basic:
        headers["WWW-Authenticate"] = 'Basic realm="tessera", charset="UTF-8"'
    elif isinstance(error, TemporarilyUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, MethodNotAllowed):
        headers["Allow"] = allow
    return json_response(error.to_dict(), error.status, headers)


def oauth_endpoint(
    methods: tuple[str, ...] = ("POST",),
) -> Callable[[Endpoint], Endpoint]:
    """Wrap an endpoint so that every failure becomes its RFC error response:
    a wrong method, an OAuthError, a store that cannot answer (503), or a bug
    (a generic 500 whose detail stays in the log)."""
    allow = ", ".join(methods)

    def decorate(handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                if request.method not in methods:
                    raise MethodNotAllowed()
                return await handler(request)
            except OAuthError as error:
                return error_response(error, allow)
            except (SQLAlchemyError, OSError) as error:
                logger.warning("store unavailable: %s", type(error).__name__)
                return error_response(TemporarilyUnavailable())
            except Exception:
                logger.exception("unexpected failure in %s", request.url.path)
                return error_response(ServerError())

        endpoint.__name__ = handler.__name__
        return endpoint

    return decorate


async def read_form(request: Request, max_bytes: int) -> Form:
    """The body as a Form: POSTed as form-urlencoded UTF-8, within the size cap."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != _FORM_TYPE:
        raise InvalidRequest(f"The content type must be {_FORM_TYPE}.")
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        raise InvalidRequest("The request body must be UTF-8.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise RequestTooLarge()
    return Form.parse(bytes(body))


def authorization_header(request: Request) -> str | None:
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise InvalidRequest("Send one Authorization header.")
    return values[0] if values else None
