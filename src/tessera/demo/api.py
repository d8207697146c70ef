"""The demo protected API: Starlette routes behind ``tessera.verify.protect``.

    GET /hello     any valid access token
    GET /admin     an access token with scope demo.admin
    GET /healthz   no token; for readiness checks

Each protected route is a plain ASGI application wrapped by ``protect``, which
answers refused requests itself (RFC 6750 §3) and hands the verified token to
the route in ``scope["state"]["access_token"]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tessera.verify import AccessToken, Verifier, protect

__all__ = ["ADMIN_SCOPE", "build_demo_api"]

ADMIN_SCOPE = "demo.admin"


def _access_token(scope: Scope) -> AccessToken:
    token: AccessToken = scope["state"]["access_token"]
    return token


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    token = _access_token(scope)
    response = JSONResponse(
        {
            "message": "hello",
            "client_id": token.client_id,
            "sub": token.subject,
            "scope": " ".join(sorted(token.scopes)),
        }
    )
    await response(scope, receive, send)


async def admin(scope: Scope, receive: Receive, send: Send) -> None:
    token = _access_token(scope)
    response = JSONResponse(
        {"message": f"hello, {ADMIN_SCOPE}", "client_id": token.client_id}
    )
    await response(scope, receive, send)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def build_demo_api(verifier: Verifier) -> Starlette:
    """The demo API, checking tokens with ``verifier``.

    The verifier's HTTP client is closed when the application shuts down.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await verifier.aclose()

    read = protect(hello, verifier)
    administer = protect(admin, verifier, scopes=[ADMIN_SCOPE])
    routes = [
        Route("/hello", endpoint=read, methods=["GET"], name="hello"),
        Route("/admin", endpoint=administer, methods=["GET"], name="admin"),
        Route("/healthz", endpoint=healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
