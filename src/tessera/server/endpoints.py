"""The OAuth POST endpoints: token, introspection, revocation."""

from __future__ import annotations

from tessera.core.client_auth import PUBLIC, read_credentials
from tessera.core.clients import Client
from tessera.core.errors import InvalidClient, UnsupportedTokenType
from tessera.core.form import Form
from tessera.core.limits import TrustedProxies
from tessera.server.http import PostEndpoint, Reply, Request
from tessera.server.runtime import Runtime

# RFC 7009 §2.1 / RFC 7662 §2.1: hints the server knows; others are errors.
_TOKEN_TYPE_HINTS = frozenset({"access_token", "refresh_token"})


def build(runtime: Runtime) -> dict[str, PostEndpoint]:
    """The endpoints by path, bound to one running node."""
    max_bytes = runtime.settings.max_body_bytes
    proxies = TrustedProxies(runtime.settings.trusted_proxies)

    async def token(request: Request) -> Reply:
        form = await request.form(max_bytes)
        authorization = request.header(b"authorization")
        source = source_address(request, proxies)
        result = await runtime.token_endpoint.handle(form, authorization, source)
        return Reply(result.body)

    async def authenticated(request: Request) -> tuple[Client, str]:
        # RFC 7009 §2.1: authenticate the client before looking at the token.
        form = await request.form(max_bytes)
        credentials = read_credentials(request.header(b"authorization"), form)
        # The same lockout and failure count as the token endpoint.
        client = await runtime.guard.authenticate(
            credentials, runtime.clients, runtime.pepper, runtime.clock()
        )
        token_value = form.require("token")
        check_token_type_hint(form)
        return client, token_value

    async def introspect(request: Request) -> Reply:
        client, token_value = await authenticated(request)
        if client.auth_method == PUBLIC:
            # RFC 7662 §2.1 asks for authorization; a bare client_id is none.
            # Revocation is open to public clients (RFC 7009 §2.1).
            raise InvalidClient(detail="public clients may not introspect")
        return Reply(await runtime.inspector.introspect(token_value, client))

    async def revoke(request: Request) -> Reply:
        client, token_value = await authenticated(request)
        if await runtime.inspector.revoke(token_value, client):
            runtime.audit.emit("token.revoked", client_id=client.client_id)
        return Reply(None)

    return {
        "/oauth2/token": PostEndpoint(token),
        "/oauth2/introspect": PostEndpoint(introspect),
        "/oauth2/revoke": PostEndpoint(revoke),
    }


def check_token_type_hint(form: Form) -> None:
    hint = form.get("token_type_hint")
    if hint is not None and hint not in _TOKEN_TYPE_HINTS:
        raise UnsupportedTokenType()


def source_address(request: Request, proxies: TrustedProxies) -> str:
    """The address a request is rate-limited as: its peer, or the client a
    trusted proxy forwarded it for. X-Forwarded-For may be sent as several
    header lines; a generator, so they are read only for a trusted peer."""
    peer = request.scope.get("client")
    forwarded_for = (
        value.decode("latin-1")
        for name, value in request.scope["headers"]
        if name == b"x-forwarded-for"
    )
    return proxies.source(peer[0] if peer else None, forwarded_for)
