"""``/oauth2/logout``: RP-initiated logout (OpenID Connect RP-Initiated
Logout 1.0), GET or POST.

    read the parameters → [a confirmation: check_csrf]
    → validate (tessera.core.logout): hint, client, post-logout URI
    → end the session at once when a valid ID token hint names the person
      signed in, or when the person confirmed; otherwise ask them first
    → 302/303 to post_logout_redirect_uri?state=…, or a "signed out" page

Without a hint, a link on any site could sign the person out; asking first
is what §2 recommends. A relying party's cross-site POST arrives without
the session cookie (SameSite=Lax), so it too is answered with the question,
whose same-site answer does carry the cookie.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from tessera.core.logout import LogoutRequest, validate
from tessera.core.redirect_uris import with_params
from tessera.server.browser.pages import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Pages,
    check_csrf,
    cookie,
    expire_cookie,
    published_keys,
    query,
    read_form,
    redirect,
    secure_cookies,
)

if TYPE_CHECKING:
    from tessera.server.runtime import Runtime


class Logout:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def logout(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        posted = request.method == "POST"
        if posted:
            params = await read_form(request, runtime.settings.max_body_bytes)
        else:
            params = query(request)
        confirmed = posted and CSRF_FIELD in params
        if confirmed:
            check_csrf(request, params)

        now = int(runtime.clock())
        logout = await validate(
            params,
            runtime.clients,
            issuer=runtime.settings.issuer,
            keys=published_keys(runtime, now),
        )
        browser_cookie = cookie(request, SESSION_COOKIE)
        person = await runtime.browser.signed_in(browser_cookie, now)
        hinted = (
            person is not None
            and logout.hint is not None
            and logout.hint.subject == person.user.user_id
        )

        if not (confirmed or hinted or (person is None and not posted)):
            return self.confirmation(runtime, request, logout)
        if browser_cookie is not None:
            await runtime.browser.sessions.delete(browser_cookie)
        if person is not None:
            runtime.audit.emit(
                "user.logout", user_id=person.user.user_id, client_id=logout.client_id
            )
        return self.signed_out(runtime, logout, 303 if posted else 302)

    def confirmation(
        self, runtime: Runtime, request: Request, logout: LogoutRequest
    ) -> Response:
        fields = [
            (name, value)
            for name, value in (
                ("client_id", logout.client_id),
                ("post_logout_redirect_uri", logout.post_logout_redirect_uri),
                ("state", logout.state),
            )
            if value is not None
        ]
        return self.pages.render_form(
            request,
            "logout.html",
            form_targets=[u for u in [logout.post_logout_redirect_uri] if u],
            title="Sign out?",
            client_id=logout.client_id,
            fields=fields,
        )

    def signed_out(
        self, runtime: Runtime, logout: LogoutRequest, status: int
    ) -> Response:
        response: Response
        if logout.post_logout_redirect_uri is not None:
            url = with_params(logout.post_logout_redirect_uri, {"state": logout.state})
            response = redirect(url, status)
        else:
            response = self.pages.render(
                "message.html", title="Signed out", message="You are signed out."
            )
        secure = secure_cookies(runtime.settings.issuer)
        expire_cookie(response, SESSION_COOKIE, secure=secure)
        return response
