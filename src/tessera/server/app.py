"""The ASGI application."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tessera.config import Settings
from tessera.server import discovery, endpoints, userinfo
from tessera.server.browser.routes import routes as browser_routes
from tessera.server.http import PostEndpoint, Receive, Scope, Send
from tessera.server.metrics import CONTENT_TYPE
from tessera.server.runtime import Runtime, start

logger = logging.getLogger("tessera.server")

_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. It never touches the database, so an
    orchestrator does not restart a node only because the database is down."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: the database answers. Any failure, a hung database
    included, is a 503, so a load balancer takes the node out of rotation
    rather than reading a 500 as a bug."""
    runtime: Runtime = request.app.state.runtime
    try:
        await runtime.check_store()
    except Exception as error:
        logger.warning("not ready: %s", type(error).__name__)
        return JSONResponse(
            {"status": "unavailable", "reason": "database"},
            503,
            headers={"Retry-After": "5", **_NO_STORE},
        )
    return JSONResponse({"status": "ready"}, headers=_NO_STORE)


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE)


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
            posts = endpoints.build(runtime)
            for path, endpoint in posts.items():
                # Labelled by the path's last part: token, introspect, revoke.
                endpoint.observe = runtime.metrics.observer(path.rsplit("/", 1)[1])
            self.posts = posts
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
                Route("/oauth2/userinfo", userinfo.userinfo, methods=_ANY_METHOD),
                Route("/healthz", healthz),
                Route("/readyz", readyz),
                Route("/metrics", metrics),
                *browser_routes(),
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
