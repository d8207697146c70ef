"""The demo dashboard: a small web application that signs people in with
Tessera, the way an internal tool would (OpenID Connect, authorization code
with PKCE).

    GET  /            who is signed in, or a Sign in button
    GET  /login       start the authorization request
    GET  /callback    the issuer's answer: check, exchange, verify
    POST /refresh     new tokens from the refresh token
    POST /logout      end the local session, then the issuer's
    GET  /signed-out  where the issuer sends the browser back
    GET  /healthz     for readiness checks

Tokens stay on the server, in a session the browser knows only by a random
HttpOnly cookie; pages show decoded claims, never a token. POST forms carry a
double-submit CSRF token. The protocol itself is in ``oidc_client``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tessera.demo.oidc_client import (
    Client,
    OIDCError,
    PendingLogin,
    ProviderMetadata,
    TokenError,
    TokenSet,
    decode_claims_unverified,
    discover,
)

__all__ = ["DashboardConfig", "build_dashboard"]

logger = logging.getLogger("tessera.demo.dashboard")

SCOPE = "openid profile email offline_access"
SESSION_COOKIE = "tessera_dashboard_session"
CSRF_COOKIE = "tessera_dashboard_csrf"
CSRF_FIELD = "csrf"
SESSION_IDLE_SECONDS = 8 * 3600
# A login not finished within this long is dropped; its state is then unknown.
PENDING_SECONDS = 600
# Several tabs may each start a login; more than this is abuse.
MAX_PENDING = 5
MAX_SESSIONS = 10_000
MAX_FORM_BYTES = 4096
_TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time", "updated_at")


@dataclass(frozen=True)
class DashboardConfig:
    issuer: str
    client_id: str
    # http://HOST:PORT, where the browser reaches the dashboard; the redirect
    # URIs registered with the issuer are derived from it.
    base_url: str
    client_secret: str | None = None
    scope: str = SCOPE

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.base_url}/signed-out"


@dataclass
class Session:
    pending: list[PendingLogin] = field(default_factory=list)
    tokens: TokenSet | None = None
    # The nonce of the first ID token, which a refreshed one must repeat.
    nonce: str | None = None
    userinfo: dict[str, Any] | None = None
    logout_state: str | None = None


class Sessions:
    """Server-side sessions, in memory, found by the SHA-256 of the cookie
    value so that a dump of this dictionary holds no usable cookie."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._by_hash: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    @staticmethod
    def _hash(cookie: str) -> str:
        return hashlib.sha256(cookie.encode()).hexdigest()

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        key = self._hash(cookie)
        entry = self._by_hash.get(key)
        if entry is None:
            return None
        session, seen = entry
        if self.clock() - seen > SESSION_IDLE_SECONDS:
            del self._by_hash[key]
            return None
        self._by_hash[key] = (session, self.clock())
        self._by_hash.move_to_end(key)
        return session

    def create(self, session: Session) -> str:
        cookie = secrets.token_urlsafe(32)
        self._by_hash[self._hash(cookie)] = (session, self.clock())
        while len(self._by_hash) > MAX_SESSIONS:
            self._by_hash.popitem(last=False)
        return cookie

    def drop(self, cookie: str | None) -> None:
        if cookie:
            self._by_hash.pop(self._hash(cookie), None)


class Dashboard:
    """The pages. ``client`` is set at start-up, once the issuer is known."""

    def __init__(self, config: DashboardConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.sessions = Sessions(clock)
        self.secure = config.base_url.startswith("https:")
        self._client: Client | None = None
        self.headers: dict[str, str] = {}

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the dashboard has not started")
        return self._client

    def start(self, client: Client) -> None:
        self._client = client
        metadata = client.metadata
        # Chromium applies form-action to the redirects a form submission
        # leads to, and Sign in and Sign out both end at the issuer.
        targets = {
            f"{url.scheme}://{url.netloc}"
            for url in map(
                urlsplit,
                (metadata.authorization_endpoint, metadata.end_session_endpoint or ""),
            )
            if url.netloc
        }
        self.headers = {
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; "
            "style-src 'unsafe-inline'; "
            f"form-action 'self' {' '.join(sorted(targets))}; "
            "frame-ancestors 'none'; base-uri 'none'",
            # Not no-referrer: Chromium then sends "Origin: null" with the
            # dashboard's own forms, and _check_csrf reads the Origin.
            "Referrer-Policy": "same-origin",
            "X-Content-Type-Options": "nosniff",
        }

    # Pages.

    async def home(self, request: Request) -> Response:
        session = self.sessions.load(request.cookies.get(SESSION_COOKIE))
        if session is None or session.tokens is None:
            return self._page(request, "Demo dashboard", _SIGNED_OUT)
        body = self._signed_in(request, session.tokens, session.userinfo or {})
        return self._page(request, "Demo dashboard", body)

    async def login(self, request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.load(cookie)
        if session is None:
            session = Session()
            cookie = self.sessions.create(session)
        pending = self.client.begin(self.config.scope)
        now = self.clock()
        session.pending = [
            p for p in session.pending if now - p.created_at < PENDING_SECONDS
        ][-(MAX_PENDING - 1) :] + [pending]
        response = self._redirect(pending.url)
        self._set_cookie(response, SESSION_COOKIE, cookie)
        return response

    async def callback(self, request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.load(cookie)
        params = request.query_params
        pending = self._take_pending(session, params.get("state"))
        if session is None or pending is None:
            return self._problem(
                request,
                400,
                "This sign-in answer does not match a sign-in started in this "
                "browser. Start again.",
            )
        if "error" in params:
            # RFC 6749 §4.1.2.1: the person said no, or the issuer refused.
            described = params.get("error_description")
            reason = params["error"] + (f": {described}" if described else "")
            return self._problem(request, 400, f"Sign-in did not finish ({reason}).")
        code = params.get("code")
        if not code:
            return self._problem(request, 400, "The issuer's answer has no code.")

        try:
            tokens = await self.client.exchange(code, pending)
            userinfo = await self.client.userinfo(tokens)
        except OIDCError as error:
            logger.warning("sign-in failed: %s", error)
            return self._problem(request, 502, f"Sign-in failed: {error}")

        # A new session id at sign-in, so that a cookie planted before it
        # (session fixation) is worth nothing after.
        self.sessions.drop(cookie)
        signed_in = Session(tokens=tokens, nonce=pending.nonce, userinfo=userinfo)
        response = self._redirect("/")
        self._set_cookie(response, SESSION_COOKIE, self.sessions.create(signed_in))
        return response

    async def refresh(self, request: Request) -> Response:
        rejected = await self._check_csrf(request)
        if rejected:
            return rejected
        session = self.sessions.load(request.cookies.get(SESSION_COOKIE))
        if session is None or session.tokens is None or session.nonce is None:
            return self._redirect("/")

        try:
            tokens = await self.client.refresh(session.tokens, session.nonce)
            userinfo = await self.client.userinfo(tokens)
        except TokenError as error:
            if error.error == "invalid_grant":
                # The grant ended at the issuer (signed out, revoked, expired).
                session.tokens = None
            return self._problem(request, 502, f"Refreshing failed: {error}")
        except OIDCError as error:
            return self._problem(request, 502, f"Refreshing failed: {error}")

        session.tokens, session.userinfo = tokens, userinfo
        return self._redirect("/")

    async def logout(self, request: Request) -> Response:
        rejected = await self._check_csrf(request)
        if rejected:
            return rejected
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.load(cookie)
        self.sessions.drop(cookie)
        if session is None or session.tokens is None:
            return self._redirect("/signed-out")

        # RP-Initiated Logout 1.0 §2: the issuer ends its own session and
        # sends the browser back with this state, kept in a fresh session.
        state = secrets.token_urlsafe(32)
        url = self.client.end_session(
            session.tokens.id_token, self.config.post_logout_redirect_uri, state
        )
        if url is None:
            return self._redirect("/signed-out")
        response = self._redirect(url)
        after = self.sessions.create(Session(logout_state=state))
        self._set_cookie(response, SESSION_COOKIE, after)
        return response

    async def signed_out(self, request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.load(cookie)
        state = request.query_params.get("state")
        confirmed = (
            session is not None
            and session.logout_state is not None
            and state is not None
            and hmac.compare_digest(session.logout_state, state)
        )
        self.sessions.drop(cookie)
        note = (
            "Tessera has ended your sign-in session too."
            if confirmed
            else "Your session at Tessera may still be open."
        )
        body = f"<h1>Signed out</h1><p>You are signed out of the dashboard. {note}</p>"
        response = self._page(request, "Signed out", body + _SIGN_IN_FORM)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    # Steps the pages share.

    def _take_pending(
        self, session: Session | None, state: str | None
    ) -> PendingLogin | None:
        if session is None:
            return None
        now = self.clock()
        for pending in session.pending:
            if now - pending.created_at >= PENDING_SECONDS:
                continue
            try:
                Client.check_state(pending, state)
            except OIDCError:
                continue
            # Each state answers once: a replayed callback finds nothing.
            session.pending.remove(pending)
            return pending
        return None

    async def _check_csrf(self, request: Request) -> Response | None:
        """Double-submit: the form must echo the CSRF cookie, which another
        site can neither read nor set; and the browser's Origin, when it
        sends one, must be this dashboard."""
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin is not None and origin != own:
            return self._problem(request, 403, "This form came from another site.")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return self._problem(request, 413, "The form is too large.")
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get(CSRF_FIELD, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return self._problem(
                request, 403, "The form has expired. Go back, reload, and try again."
            )
        return None

    def _signed_in(
        self, request: Request, tokens: TokenSet, userinfo: dict[str, Any]
    ) -> str:
        claims = tokens.id_claims
        # OIDC Core §5.4: with an access token, profile claims may come from
        # UserInfo only.
        known = {**claims, **userinfo}
        who = known.get("name") or known.get("preferred_username") or claims["sub"]
        access = decode_claims_unverified(tokens.access_token)
        csrf = escape(self._csrf_value(request))
        expiry = "not stated"
        if tokens.expires_at is not None:
            left = max(0, round(tokens.expires_at - self.clock()))
            expiry = f"{_when(tokens.expires_at)} (in {left} s)"
        return f"""
<h1>Signed in as {escape(str(who))}</h1>
<p>Access token expires: <span id="expiry">{escape(expiry)}</span>.
Refresh token: {"held on the server" if tokens.refresh_token else "none"}.</p>
<form method="post" action="/refresh">
<input type="hidden" name="{CSRF_FIELD}" value="{csrf}">
<button type="submit">Refresh tokens</button></form>
<form method="post" action="/logout">
<input type="hidden" name="{CSRF_FIELD}" value="{csrf}">
<button type="submit">Sign out</button></form>
<h2>ID token claims (verified)</h2>{_table(claims, "id-token")}
<h2>UserInfo</h2>{_table(userinfo, "userinfo")}
<h2>Access token claims (decoded; the APIs that receive it verify it)</h2>
{_table(access, "access-token") if access else "<p>An opaque token.</p>"}
"""

    def _csrf_value(self, request: Request) -> str:
        value = request.cookies.get(CSRF_COOKIE)
        if not value or len(value) > 64:
            value = secrets.token_urlsafe(32)
        request.state.csrf = value
        return value

    def _page(
        self, request: Request, title: str, body: str, status: int = 200
    ) -> Response:
        page = _LAYOUT.format(title=escape(title), body=body)
        response = HTMLResponse(page, status, headers=self.headers)
        csrf = getattr(request.state, "csrf", None)
        if csrf and csrf != request.cookies.get(CSRF_COOKIE):
            self._set_cookie(response, CSRF_COOKIE, csrf)
        return response

    def _problem(self, request: Request, status: int, message: str) -> Response:
        body = f"<h1>Something went wrong</h1><p>{escape(message)}</p>"
        return self._page(request, "Error", body + _BACK, status)

    def _redirect(self, url: str) -> Response:
        return RedirectResponse(url, 303, headers=self.headers)

    def _set_cookie(self, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name, value, path="/", httponly=True, samesite="lax", secure=self.secure
        )


def _when(timestamp: float) -> str:
    try:
        moment = datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, ValueError, OSError):
        return "out of range"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _table(claims: dict[str, Any], table_id: str) -> str:
    rows = []
    for name, value in sorted(claims.items()):
        shown = value if isinstance(value, str) else json.dumps(value)
        if name in _TIME_CLAIMS and _is_time(value):
            shown = f"{value} ({_when(value)})"
        rows.append(
            f'<tr><th>{escape(name)}</th><td data-claim="{escape(name)}">'
            f"{escape(shown)}</td></tr>"
        )
    return f'<table id="{table_id}">{"".join(rows)}</table>'


_SIGN_IN_FORM = (
    '<form method="get" action="/login"><button type="submit">Sign in</button></form>'
)
_SIGNED_OUT = (
    "<h1>Demo dashboard</h1><p>An internal tool that signs you in with "
    "Tessera.</p>" + _SIGN_IN_FORM
)
_BACK = '<p><a href="/">Back to the dashboard</a></p>'
_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
  padding: 0 1rem; color: #1d2330; }}
form {{ display: inline-block; margin: 0 .5rem 1rem 0; }}
button {{ font: inherit; padding: .4rem 1rem; cursor: pointer; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }}
th, td {{ text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #dde;
  vertical-align: top; }}
th {{ width: 12rem; font-weight: 600; }}
td {{ font-family: ui-monospace, monospace; word-break: break-all; }}
</style></head>
<body>{body}</body></html>
"""


def build_dashboard(
    config: DashboardConfig,
    *,
    metadata: ProviderMetadata | None = None,
    http: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The dashboard application. It discovers the issuer at start-up unless
    given ``metadata``; a given ``http`` client is the caller's to close."""
    dashboard = Dashboard(config, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_http = http is None
        client_http = http or httpx.AsyncClient(timeout=10)
        try:
            found = metadata or await discover(config.issuer, client_http)
            dashboard.start(
                Client(
                    found,
                    config.client_id,
                    config.redirect_uri,
                    client_http,
                    client_secret=config.client_secret,
                    clock=clock,
                )
            )
            yield
        finally:
            if own_http:
                await client_http.aclose()

    return Starlette(
        routes=[
            Route("/", dashboard.home, methods=["GET"]),
            Route("/login", dashboard.login, methods=["GET"]),
            Route("/callback", dashboard.callback, methods=["GET"]),
            Route("/refresh", dashboard.refresh, methods=["POST"]),
            Route("/logout", dashboard.logout, methods=["POST"]),
            Route("/signed-out", dashboard.signed_out, methods=["GET"]),
            Route("/healthz", dashboard.healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
