"""Bearer token protection for any ASGI application (RFC 6750).

``protect(app, verifier)`` answers every request that lacks an acceptable
token itself, the way RFC 6750 §3 describes, and passes the others on with
the ``AccessToken`` at ``scope["state"]["access_token"]``:

    request                                   status  error in WWW-Authenticate
    no Authorization header, another scheme    401    none
    malformed, repeated, or a token in the URL 400    invalid_request
    token not acceptable                       401    invalid_token
    token lacks a required scope               403    insufficient_scope
    issuer unreachable                         503    none; Retry-After

Tokens in the query string are refused outright (RFC 9700 §4.3.2): a URL ends
up in logs and ``Referer`` headers. A WebSocket handshake gets the same checks
and is closed with code 1008 when they fail.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from tessera.core.errors import (
    InsufficientScope,
    InvalidRequest,
    OAuthError,
    TemporarilyUnavailable,
)

from ._verifier import Verifier

__all__ = ["BearerProtection", "protect", "read_bearer_token"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# RFC 6750 §2.1 b64token, and RFC 6749 §3.3 scope-token.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_CHALLENGED = (400, 401, 403)

_log = logging.getLogger("tessera.verify")


def protect(
    app: ASGIApp,
    verifier: Verifier,
    *,
    scopes: Collection[str] = (),
    realm: str = "tessera",
) -> BearerProtection:
    """Wrap ``app`` so that it only sees requests with an acceptable token."""
    return BearerProtection(app, verifier, scopes=scopes, realm=realm)


def read_bearer_token(scope: Scope) -> str | None:
    """The bearer token of a request; ``None`` when it offers no bearer token.

    Raises ``InvalidRequest`` for a request that tries to send one badly.
    """
    query = scope.get("query_string", b"")
    if query and any(
        name == "access_token"
        for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    ):
        raise InvalidRequest(
            "Access tokens are not accepted in the URL.",
            detail="access_token in the query string",
        )

    values = [
        value for name, value in scope["headers"] if name.lower() == b"authorization"
    ]
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(
            "The request has more than one Authorization header.",
            detail="repeated Authorization header",
        )

    # RFC 9110 §11.1: the scheme name is case-insensitive.
    scheme, _, credentials = values[0].decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip(" ")
    if not token:
        raise InvalidRequest(
            "The bearer token is missing.", detail="Bearer without a token"
        )
    if not _B64TOKEN.fullmatch(token):
        raise InvalidRequest(
            "The bearer token is malformed.", detail="token is not a b64token"
        )
    return token


def _quote(value: str) -> str:
    """An RFC 9110 §5.6.4 quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class BearerProtection:
    """The ASGI application ``protect`` returns."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        *,
        scopes: Collection[str] = (),
        realm: str = "tessera",
    ) -> None:
        if isinstance(scopes, str):
            raise TypeError("scopes must be a collection of scope names")
        for name in scopes:
            if not _SCOPE_TOKEN.fullmatch(name):
                raise ValueError(f"not a scope name: {name!r}")
        if not _PRINTABLE.fullmatch(realm):
            raise ValueError("realm must be printable ASCII")

        self.app = app
        self.verifier = verifier
        self.scopes = tuple(dict.fromkeys(scopes))
        self._challenge = "Bearer realm=" + _quote(realm)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        try:
            token = read_bearer_token(scope)
            if token is None:
                await self._reject(scope, send, None)
                return
            access_token = await self.verifier.verify(token, self.scopes)
        except OAuthError as error:
            self._log(error)
            await self._reject(scope, send, error)
            return

        scope.setdefault("state", {})["access_token"] = access_token
        await self.app(scope, receive, send)

    def _log(self, error: OAuthError) -> None:
        if isinstance(error, TemporarilyUnavailable):
            _log.warning("cannot check bearer token: %s", error.detail)
        else:
            _log.debug("bearer token refused: %s: %s", error.error, error.detail)

    def _challenge_for(self, error: OAuthError) -> str:
        params = [("error", error.error), ("error_description", error.description)]
        if isinstance(error, InsufficientScope):
            params.append(("scope", " ".join(self.scopes)))
        return self._challenge + "".join(f", {k}={_quote(v)}" for k, v in params)

    async def _reject(self, scope: Scope, send: Send, error: OAuthError | None) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return

        headers = [(b"cache-control", b"no-store")]
        if error is None:
            status, challenge, body = 401, self._challenge, b""
        else:
            status, body = error.status, json.dumps(error.to_dict()).encode()
            challenge = self._challenge_for(error) if status in _CHALLENGED else None
            headers.append((b"content-type", b"application/json"))
        if challenge is not None:
            headers.append((b"www-authenticate", challenge.encode("latin-1")))
        if isinstance(error, TemporarilyUnavailable):
            headers.append((b"retry-after", str(error.retry_after).encode()))
        headers.append((b"content-length", str(len(body)).encode()))

        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})
