"""The ASGI application."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tessera.config import Settings
from tessera.server import discovery, endpoints
from tessera.server.http import PostEndpoint, Receive, Scope, Send
from tessera.server.runtime import start

_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class TesseraApp:
    """Sends the OAuth POST endpoints straight to their plain-ASGI handlers,
    and everything else (lifespan, metadata, JWKS, health) to Starlette."""

    def __init__(
        self, settings: Settings, clock: Callable[[], float], background: bool
    ):
        self.posts: dict[str, PostEndpoint] = {}

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            runtime = await start(settings, clock)
            app.state.runtime = runtime
            self.posts = endpoints.build(runtime)
            if background:
                runtime.start_background()
            try:
                yield
            finally:
                self.posts = {}
                await runtime.close()

        self.starlette = Starlette(
            routes=[
                Route("/oauth2/jwks", discovery.jwks, methods=_ANY_METHOD),
                Route(
                    "/.well-known/oauth-authorization-server",
                    discovery.server_metadata,
                    methods=_ANY_METHOD,
                ),
                Route(
                    "/.well-known/openid-configuration",
                    discovery.server_metadata,
                    methods=_ANY_METHOD,
                ),
                Route("/healthz", healthz),
            ],
            lifespan=lifespan,
        )

    @property
    def state(self) -> State:
        return self.starlette.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.posts.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.starlette(scope, receive, send)


def build_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    background: bool = True,
) -> TesseraApp:
    return TesseraApp(settings, clock, background)
