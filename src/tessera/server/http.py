"""Plain-ASGI request reading and response writing for the OAuth endpoints.

The POST endpoints (token, introspection, revocation) run as plain ASGI
handlers rather than through Starlette's Request and Response objects: on
the issuance hot path those objects cost about as much as the ECDSA
signature (see docs/benchmarks.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from tessera.core.errors import (
    InvalidClient,
    InvalidRequest,
    MethodNotAllowed,
    OAuthError,
    RequestTooLarge,
    ServerError,
    TemporarilyUnavailable,
    TooManyRequests,
)
from tessera.core.form import Form

logger = logging.getLogger("tessera.server")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_JSON = (b"content-type", b"application/json")
_FORM_TYPE = "application/x-www-form-urlencoded"


class Reply:
    """A response: status, extra headers, and a JSON body (or none)."""

    __slots__ = ("status", "headers", "body")

    def __init__(
        self,
        body: dict[str, Any] | None,
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else NO_STORE
        self.body = b"" if body is None else orjson.dumps(body)

    async def send(self, send: Send) -> None:
        headers = [*self.headers, (b"content-length", str(len(self.body)).encode())]
        if self.body:
            headers.append(_JSON)
        await send(
            {"type": "http.response.start", "status": self.status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": self.body})


def error_reply(error: OAuthError) -> Reply:
    headers = list(NO_STORE)
    if isinstance(error, InvalidClient) and error.basic:
        headers.append((b"www-authenticate", b'Basic realm="tessera", charset="UTF-8"'))
    elif isinstance(error, TemporarilyUnavailable | TooManyRequests):
        headers.append((b"retry-after", str(error.retry_after).encode()))
    elif isinstance(error, MethodNotAllowed):
        headers.append((b"allow", b"POST"))
    return Reply(error.to_dict(), error.status, headers)


class Request:
    """What a POST endpoint needs of an ASGI request."""

    __slots__ = ("scope", "receive", "_headers")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self._headers: list[tuple[bytes, bytes]] = scope["headers"]

    def header(self, name: bytes) -> str | None:
        """The one value of a header; InvalidRequest if it is repeated."""
        found = None
        for key, value in self._headers:
            if key == name:
                if found is not None:
                    raise InvalidRequest("A header is repeated.")
                found = value
        return None if found is None else found.decode("latin-1")

    async def form(self, max_bytes: int) -> Form:
        """The body as a Form: form-urlencoded UTF-8, within the size cap."""
        media_type, _, params = (self.header(b"content-type") or "").partition(";")
        if media_type.strip().lower() != _FORM_TYPE:
            raise InvalidRequest(f"The content type must be {_FORM_TYPE}.")
        charset = params.strip().lower().replace(" ", "")
        if charset and charset not in ("charset=utf-8", 'charset="utf-8"'):
            raise InvalidRequest("The request body must be UTF-8.")
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise RequestTooLarge()
        body = b""
        more = True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise InvalidRequest("The client went away.")
            body += message.get("body", b"")
            if len(body) > max_bytes:
                raise RequestTooLarge()
            more = message.get("more_body", False)
        return Form.parse(body)


Handler = Callable[[Request], Awaitable[Reply]]
# Told each reply's status and the seconds it took to make: how the server's
# metrics see the endpoints without this module knowing of them.
Observer = Callable[[int, float], None]


class PostEndpoint:
    """A plain-ASGI POST endpoint. Every failure becomes its RFC error: a wrong
    method, an OAuthError, a store that cannot answer (503), or a bug (a
    generic 500 whose detail stays in the log)."""

    def __init__(self, handler: Handler, observe: Observer | None = None) -> None:
        self.handler = handler
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed()
            reply = await self.handler(Request(scope, receive))
        except OAuthError as error:
            reply = error_reply(error)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("store unavailable: %s", type(error).__name__)
            reply = error_reply(TemporarilyUnavailable())
        except Exception:
            logger.exception("unexpected failure in %s", scope.get("path"))
            reply = error_reply(ServerError())
        if self.observe is not None:
            # Before the reply goes out, so whoever has read a response and
            # then asks for the metrics finds it counted.
            self.observe(reply.status, time.perf_counter() - started)
        await reply.send(send)
