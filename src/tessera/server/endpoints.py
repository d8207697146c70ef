"""The OAuth endpoints: token, introspection, revocation."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tessera.core.client_auth import authenticate, read_credentials
from tessera.core.clients import Client
from tessera.core.errors import UnsupportedTokenType
from tessera.core.form import Form
from tessera.server.http import (
    NO_STORE,
    authorization_header,
    json_response,
    oauth_endpoint,
    read_form,
)
from tessera.server.runtime import Runtime

# RFC 7009 §2.1 / RFC 7662 §2.1: hints the server knows; others are errors.
_TOKEN_TYPE_HINTS = frozenset({"access_token", "refresh_token"})


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@oauth_endpoint()
async def token(request: Request) -> Response:
    runtime = _runtime(request)
    form = await read_form(request, runtime.settings.max_body_bytes)
    result = await runtime.token_endpoint.handle(form, authorization_header(request))
    return json_response(result.body, headers=NO_STORE)


async def _authenticated_token_request(
    request: Request, runtime: Runtime
) -> tuple[Client, str]:
    form = await read_form(request, runtime.settings.max_body_bytes)
    credentials = read_credentials(authorization_header(request), form)
    token_value = form.require("token")
    check_token_type_hint(form)
    client = await authenticate(
        credentials, runtime.clients, runtime.pepper, runtime.clock()
    )
    return client, token_value


def check_token_type_hint(form: Form) -> None:
    hint = form.get("token_type_hint")
    if hint is not None and hint not in _TOKEN_TYPE_HINTS:
        raise UnsupportedTokenType()


@oauth_endpoint()
async def introspect(request: Request) -> Response:
    runtime = _runtime(request)
    client, token_value = await _authenticated_token_request(request, runtime)
    body = await runtime.inspector.introspect(token_value, client)
    return json_response(body, headers=NO_STORE)


@oauth_endpoint()
async def revoke(request: Request) -> Response:
    runtime = _runtime(request)
    client, token_value = await _authenticated_token_request(request, runtime)
    revoked = await runtime.inspector.revoke(token_value, client)
    if revoked:
        runtime.audit.emit("token.revoked", client_id=client.client_id)
    return Response(status_code=200, headers=NO_STORE)
