"""The ASGI application."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.config import Settings
from tessera.server import discovery, endpoints
from tessera.server.http import json_response
from tessera.server.runtime import start


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


def build_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    background: bool = True,
) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await start(settings, clock)
        app.state.runtime = runtime
        if background:
            runtime.start_background()
        try:
            yield
        finally:
            await runtime.close()

    any_method = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [
        Route("/oauth2/token", endpoints.token, methods=any_method),
        Route("/oauth2/introspect", endpoints.introspect, methods=any_method),
        Route("/oauth2/revoke", endpoints.revoke, methods=any_method),
        Route("/oauth2/jwks", discovery.jwks, methods=any_method),
        Route(
            "/.well-known/oauth-authorization-server",
            discovery.server_metadata,
            methods=any_method,
        ),
        Route(
            "/.well-known/openid-configuration",
            discovery.server_metadata,
            methods=any_method,
        ),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
