"""The authorization code flow in the browser: ``/oauth2/authorize``, the
login page and the consent page.

    GET or POST /oauth2/authorize → validate (tessera.core.authorize)
      → next_step: LOGIN   → store the request → 302 /login?request=ID
                   CONSENT → store the request → 302 /consent?request=ID
                   ISSUE   → issue a code      → 302 redirect_uri?code=…
    POST /login   → check_csrf → authenticate → new session → next_step
    POST /consent → check_csrf → check the session → allow: remember,
                    issue → 303 redirect_uri?code=…; deny → access_denied

A request waiting for login or consent is stored under a random id for ten
minutes and used once. GETs answer 302; POSTs answer 303, so the browser
follows with a GET and the form's fields are not sent on (RFC 9700 §4.12).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from tessera.core.authorize import (
    AccessDenied,
    AuthorizationRequest,
    Login,
    Redirected,
    Step,
    fresh_enough,
    next_step,
    validate,
)
from tessera.core.errors import InvalidRequest
from tessera.core.users import LoginFailed, LoginLocked, User, authenticate_user
from tessera.server import endpoints
from tessera.server.browser.pages import (
    SESSION_COOKIE,
    Pages,
    check_csrf,
    cookie,
    new_csrf_token,
    published_keys,
    query,
    read_form,
    redirect,
    secure_cookies,
    set_cookie,
    set_csrf,
)
from tessera.server.browser.state import PENDING_REQUEST_TTL, BrowserState, SignedIn
from tessera.server.http import Request as PlainRequest
from tessera.store.codes import IssuedCode

if TYPE_CHECKING:
    from tessera.server.runtime import Runtime

# What each scope lets the application do, in the words the consent page
# uses; any other scope is an API permission, named as it is.
SCOPE_WORDS = {
    "openid": "Know who you are on this server (your user id)",
    "profile": "See your name",
    "email": "See your email address",
    "offline_access": "Keep access while you are not using it",
}
EXPIRED = (
    "This sign-in request has expired or is unknown. "
    "Go back to the application and start again."
)


def permissions(scope: frozenset[str]) -> list[str]:
    known = [SCOPE_WORDS[name] for name in SCOPE_WORDS if name in scope]
    other = [
        f"Use the permission “{name}”" for name in sorted(scope - SCOPE_WORDS.keys())
    ]
    return known + other


class Flow:
    """The handlers, bound to the pages; each finds the running node in
    ``request.app.state``."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    # GET /oauth2/authorize

    async def authorize(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        state = runtime.browser
        now = int(runtime.clock())
        issuer = runtime.settings.issuer
        # OIDC Core §3.1.2.1: GET and POST (a form) alike. A POST is answered
        # with 303, so the browser does not post the form on (RFC 9700 §4.12).
        if request.method == "POST":
            params = await read_form(request, runtime.settings.max_body_bytes)
            status = 303
        else:
            params, status = query(request), 302

        try:
            auth = await validate(
                params,
                runtime.clients,
                issuer=issuer,
                now=now,
                keys=lambda: published_keys(runtime, now),
            )
            person = await state.signed_in(cookie(request, SESSION_COOKIE), now)
            step = await decide(state, auth, person, issuer)
        except Redirected as refusal:
            return redirect(refusal.url, status)

        if step is Step.ISSUE:
            assert person is not None
            return redirect(await issue(runtime, auth, person), status)
        request_id = await state.requests.save(
            auth.to_params(), now + PENDING_REQUEST_TTL
        )
        return redirect(f"/{step.value}?request={request_id}", status)

    # /login

    async def login_page(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        request_id = query(request).get("request")
        auth = await pending(runtime, request_id)
        hint = auth.login_hint if auth else None
        return self.login_form(runtime, request, auth, request_id, username=hint or "")

    def login_form(
        self,
        runtime: Runtime,
        request: Request,
        auth: AuthorizationRequest | None,
        request_id: str | None,
        *,
        status: int = 200,
        error: str | None = None,
        username: str = "",
    ) -> Response:
        return self.pages.render_form(
            request,
            "login.html",
            status,
            form_targets=[auth.redirect_uri] if auth else [],
            title="Sign in",
            client_id=auth.client_id if auth else None,
            request_id=request_id,
            error=error,
            username=username,
        )

    async def login(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        state = runtime.browser
        form = await read_form(request, runtime.settings.max_body_bytes)
        check_csrf(request, form)
        request_id = form.get("request")
        auth = await pending(runtime, request_id)
        now = int(runtime.clock())

        username = form.get("username") or ""
        try:
            login = await authenticate_user(
                username,
                form.get("password") or "",
                users=state.users,
                passwords=state.passwords,
                throttle=state.throttle,
                audit=runtime.audit,
                source=source_address(state, request),
                now=runtime.clock(),
            )
        except LoginLocked as refusal:
            response = self.login_form(
                runtime, request, auth, request_id, status=429, error=refusal.message
            )
            response.headers["Retry-After"] = str(refusal.retry_after)
            return response
        except LoginFailed as refusal:
            # 400, not 401: no HTTP authentication scheme is being asked for.
            return self.login_form(
                runtime,
                request,
                auth,
                request_id,
                status=400,
                error=refusal.message,
                username=username,
            )
        if login.new_password_hash is not None:
            await state.users.set_password(login.user.user_id, login.new_password_hash)

        person = await start_session(runtime, request, login.user, now)
        if auth is None or request_id is None:
            response = self.pages.render(
                "message.html",
                title="Signed in",
                message=f"You are signed in as {login.user.username}.",
            )
        else:
            # This login was made for the request: it satisfies prompt=login
            # and max_age on the consent page too, however long that takes.
            auth = dataclasses.replace(auth, login_session=person.session.key)
            await state.requests.update(request_id, auth.to_params())
            response = await self.resume(runtime, auth, request_id, person)
        secure = secure_cookies(runtime.settings.issuer)
        set_cookie(
            response,
            SESSION_COOKIE,
            person.cookie,
            runtime.settings.session_lifetime,
            secure=secure,
        )
        # A new token for the new session: one seen before the login (by a
        # script on a shared computer, say) is worth nothing after it.
        set_csrf(response, new_csrf_token(), secure=secure)
        return response

    async def resume(
        self,
        runtime: Runtime,
        auth: AuthorizationRequest,
        request_id: str,
        person: SignedIn,
    ) -> Response:
        """After a login: on to consent, or straight back with a code."""
        state, issuer = runtime.browser, runtime.settings.issuer
        try:
            step = await decide(state, auth, person, issuer)
        except Redirected as refusal:
            await take(runtime, request_id)
            return redirect(refusal.url, 303)
        if step is Step.ISSUE:
            await take(runtime, request_id)
            return redirect(await issue(runtime, auth, person), 303)
        if step is Step.CONSENT:
            return redirect(f"/consent?request={request_id}", 303)
        # A login that does not satisfy the request cannot happen: a fresh
        # session satisfies prompt=login and max_age by construction.
        raise InvalidRequest(EXPIRED, detail="fresh login not accepted")

    # /consent

    async def consent_page(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        request_id = query(request).get("request")
        auth = await pending(runtime, request_id)
        if auth is None or request_id is None:
            raise InvalidRequest(EXPIRED)
        now = int(runtime.clock())
        person = await runtime.browser.signed_in(cookie(request, SESSION_COOKIE), now)
        if person is None or not fresh_enough(auth, login_of(person)):
            return redirect(f"/login?request={request_id}", 302)

        return self.pages.render_form(
            request,
            "consent.html",
            form_targets=[auth.redirect_uri],
            title="Allow access?",
            client_id=auth.client_id,
            username=person.user.username,
            permissions=permissions(auth.scope),
            request_id=request_id,
        )

    async def consent(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        state = runtime.browser
        form = await read_form(request, runtime.settings.max_body_bytes)
        check_csrf(request, form)
        request_id = form.require("request")
        decision = form.require("decision")
        if decision not in ("allow", "deny"):
            raise InvalidRequest("The decision must be allow or deny.")

        auth = await pending(runtime, request_id)
        if auth is None:
            raise InvalidRequest(EXPIRED)
        now = int(runtime.clock())
        person = await state.signed_in(cookie(request, SESSION_COOKIE), now)
        if person is None or not fresh_enough(auth, login_of(person)):
            return redirect(f"/login?request={request_id}", 303)

        await take(runtime, request_id)
        user_id, client_id = person.user.user_id, auth.client_id
        destination = auth.destination(runtime.settings.issuer)
        if decision == "deny":
            runtime.audit.emit("consent.denied", user_id=user_id, client_id=client_id)
            return redirect(destination.error_url(AccessDenied()), 303)
        await state.consents.remember(user_id, client_id, auth.scope, now)
        runtime.audit.emit(
            "consent.granted",
            user_id=user_id,
            client_id=client_id,
            scope=" ".join(sorted(auth.scope)),
        )
        return redirect(await issue(runtime, auth, person), 303)


async def decide(
    state: BrowserState,
    auth: AuthorizationRequest,
    person: SignedIn | None,
    issuer: str,
) -> Step:
    if person is None:
        return next_step(auth, issuer=issuer, login=None, consented=frozenset())
    consented = await state.consents.get(person.user.user_id, auth.client_id)
    return next_step(auth, issuer=issuer, login=login_of(person), consented=consented)


def login_of(person: SignedIn | None) -> Login | None:
    if person is None:
        return None
    return Login(person.session.key, person.user.user_id, person.session.auth_time)


async def pending(
    runtime: Runtime, request_id: str | None
) -> AuthorizationRequest | None:
    """The stored request the id names; None without an id. An unknown or
    expired id is an error page."""
    if request_id is None:
        return None
    params = await runtime.browser.requests.get(request_id, int(runtime.clock()))
    if params is None:
        raise InvalidRequest(EXPIRED)
    return AuthorizationRequest.from_params(params)


async def take(runtime: Runtime, request_id: str) -> None:
    """Use the stored request up. Of two tabs posting the same form, the
    second finds it gone: one request, one code."""
    if await runtime.browser.requests.take(request_id, int(runtime.clock())) is None:
        raise InvalidRequest(EXPIRED)


async def issue(runtime: Runtime, auth: AuthorizationRequest, person: SignedIn) -> str:
    """Issue a code for the request and return where the browser takes it.
    The client is looked up again: it may have been disabled meanwhile."""
    client = await runtime.clients.get(auth.client_id)
    if client is None or client.disabled:
        raise InvalidRequest("The client is unknown or disabled.")
    now = int(runtime.clock())
    scope = " ".join(sorted(auth.scope))
    code = await runtime.browser.codes.issue(
        IssuedCode(
            client_id=auth.client_id,
            user_id=person.user.user_id,
            redirect_uri=auth.redirect_uri,
            redirect_uri_given=auth.redirect_uri_given,
            scope=scope,
            code_challenge=auth.code_challenge,
            nonce=auth.nonce,
            auth_time=person.session.auth_time,
            expires_at=now + runtime.settings.authorization_code_ttl,
        )
    )
    runtime.audit.emit(
        "authorization_code.issued",
        client_id=auth.client_id,
        user_id=person.user.user_id,
        scope=scope,
    )
    return auth.destination(runtime.settings.issuer).url(code=code)


async def start_session(
    runtime: Runtime, request: Request, user: User, now: int
) -> SignedIn:
    """A new session for a login: the browser's old one, if any, ends, so a
    session id planted before the login is never promoted by it."""
    state = runtime.browser
    old = cookie(request, SESSION_COOKIE)
    if old is not None:
        await state.sessions.delete(old)
    expires_at = now + runtime.settings.session_lifetime
    value = await state.sessions.create(user.user_id, now, expires_at)
    session = await state.sessions.get(value, now)
    if session is None:
        raise InvalidRequest("The account cannot sign in.", detail="session lost")
    return SignedIn(value, session, user)


def source_address(state: BrowserState, request: Request) -> str:
    """The address a login is counted against: the same as the token
    endpoint's, X-Forwarded-For believed from trusted proxies only."""
    plain = PlainRequest(request.scope, request.receive)
    return endpoints.source_address(plain, state.proxies)
