"""What every browser-facing response shares: templates, security headers,
cookies, the CSRF check, form reading, and error pages.

Every page and redirect carries the same headers: a Content-Security-Policy
that allows nothing but Tessera's own stylesheet and forms, no framing
(clickjacking on a consent page would grant access), no Referer (the URL
may hold a request id or a code: RFC 9700 §4.2.4), and no caching.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from joserfc.jwk import KeySet
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tessera.core.errors import (
    InvalidRequest,
    OAuthError,
    RequestTooLarge,
    ServerError,
    TemporarilyUnavailable,
    TooManyRequests,
)
from tessera.core.form import Form
from tessera.core.redirect_uris import form_action_source

if TYPE_CHECKING:
    from tessera.server.runtime import Runtime

logger = logging.getLogger("tessera.server")

SESSION_COOKIE = "tessera_session"
CSRF_COOKIE = "tessera_csrf"
CSRF_FIELD = "csrf_token"
_FORM_TYPE = "application/x-www-form-urlencoded"
# A cookie value as this module writes them: token_urlsafe(32).
_MAX_COOKIE_VALUE = 64
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_CSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"


class CsrfRejected(InvalidRequest):
    """A form post without the token of the page it came from."""

    status = 403
    default_description = (
        "This form could not be verified. Go back, reload the page and try again."
    )


def security_headers(form_targets: Iterable[str] = ()) -> dict[str, str]:
    """The headers of every page and redirect. ``form_targets`` are where a
    form on the page may end up: browsers apply ``form-action`` to the
    redirects that follow a form post too, so a page whose form leads to a
    client's redirect URI names that URI's origin."""
    sources = ["'self'"]
    for target in form_targets:
        source = form_action_source(target)
        if source is not None and source not in sources:
            sources.append(source)
    return {
        "Content-Security-Policy": f"{_CSP}; form-action {' '.join(sources)}",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


class Pages:
    """The templates and the stylesheet, loaded once when the app is built."""

    def __init__(self) -> None:
        self._templates = Environment(
            loader=PackageLoader("tessera.server", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            auto_reload=False,
        )
        self.stylesheet = (
            resources.files("tessera.server")
            .joinpath("static/tessera.css")
            .read_bytes()
        )

    def render(
        self,
        template: str,
        status: int = 200,
        *,
        form_targets: Iterable[str] = (),
        **context: Any,
    ) -> HTMLResponse:
        body = self._templates.get_template(template).render(**context)
        return HTMLResponse(body, status, headers=security_headers(form_targets))

    def render_form(
        self,
        request: Request,
        template: str,
        status: int = 200,
        *,
        form_targets: Iterable[str] = (),
        **context: Any,
    ) -> HTMLResponse:
        """A page with a form: the browser's CSRF token (a new one if it has
        none) goes into the form and, renewed, into the cookie."""
        runtime: Runtime = request.app.state.runtime
        token = csrf_token(request)
        response = self.render(
            template, status, form_targets=form_targets, csrf_token=token, **context
        )
        set_csrf(response, token, secure=secure_cookies(runtime.settings.issuer))
        return response

    def error(self, error: OAuthError) -> HTMLResponse:
        """An error shown to the person: never a redirect."""
        response = self.render(
            "message.html",
            error.status,
            title="This request cannot be completed",
            message=error.description,
            alert=True,
        )
        if isinstance(error, TooManyRequests | TemporarilyUnavailable):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    async def stylesheet_response(self, request: Request) -> Response:
        return Response(
            self.stylesheet,
            media_type="text/css; charset=utf-8",
            headers={
                "Cache-Control": "public, max-age=3600",
                "X-Content-Type-Options": "nosniff",
            },
        )


def redirect(url: str, status: int, form_targets: Iterable[str] = ()) -> Response:
    """302 answers a GET; 303 answers a POST, so the browser follows it
    with a GET and the form's fields go no further (RFC 9700 §4.12)."""
    return RedirectResponse(url, status, headers=security_headers(form_targets))


Handler = Callable[[Request], Awaitable[Response]]


def page_errors(pages: Pages) -> Callable[[Handler], Handler]:
    """Turn every failure into an error page: an OAuthError as itself, a
    store that cannot answer as 503, a bug as a generic 500 whose detail
    stays in the log."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            try:
                return await handler(request)
            except OAuthError as error:
                return pages.error(error)
            except (SQLAlchemyError, OSError) as error:
                logger.warning("store unavailable: %s", type(error).__name__)
                return pages.error(TemporarilyUnavailable())
            except Exception:
                logger.exception("unexpected failure in %s", request.url.path)
                return pages.error(ServerError())

        return wrapper

    return wrap


def query(request: Request) -> Form:
    return Form.parse(request.scope["query_string"])


async def read_form(request: Request, max_bytes: int) -> Form:
    """The posted form, within the size cap; parsed by the same strict rules
    as the token endpoint's."""
    media_type = request.headers.get("content-type", "").partition(";")[0]
    if media_type.strip().lower() != _FORM_TYPE:
        raise InvalidRequest("The form was not sent as a form.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise RequestTooLarge()
    return Form.parse(body)


# Cookies.


def secure_cookies(issuer: str) -> bool:
    """Cookies are Secure unless the issuer is plain http on loopback, where
    a browser would otherwise never send them back."""
    parts = urlsplit(issuer)
    return not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)


def cookie_name(name: str, *, secure: bool) -> str:
    """A Secure cookie is named ``__Host-``: browsers then refuse it unless it
    is Secure, has Path=/ and no Domain, so a sibling subdomain cannot plant
    one (which would defeat the double-submit CSRF check) (RFC 6265bis
    §4.1.3.2). On plain-http loopback the prefix would get it refused."""
    return "__Host-" + name if secure else name


def set_cookie(
    response: Response, name: str, value: str, max_age: int, *, secure: bool
) -> None:
    # Written out rather than through http.cookies, so the attributes are
    # exactly these: HttpOnly (no script reads it; there is no script
    # anyway), SameSite=Lax (not sent on cross-site posts), Path=/.
    name = cookie_name(name, secure=secure)
    attributes = [f"{name}={value}", f"Max-Age={max_age}", "Path=/", "HttpOnly"]
    attributes.append("SameSite=Lax")
    if secure:
        attributes.append("Secure")
    response.headers.append("Set-Cookie", "; ".join(attributes))


def expire_cookie(response: Response, name: str, *, secure: bool) -> None:
    set_cookie(response, name, "", 0, secure=secure)


def cookie(request: Request, name: str) -> str | None:
    runtime: Runtime = request.app.state.runtime
    secure = secure_cookies(runtime.settings.issuer)
    value = request.cookies.get(cookie_name(name, secure=secure))
    if not value or len(value) > _MAX_COOKIE_VALUE:
        return None
    return value


# CSRF: double submit. The form's hidden field must equal the cookie, which
# another site can neither read nor set, so a form posted from elsewhere
# fails (RFC 6749 §10.12 for the OAuth side: state and PKCE).


def csrf_token(request: Request) -> str:
    """The browser's CSRF token, or a new one to set with ``set_csrf``."""
    return cookie(request, CSRF_COOKIE) or new_csrf_token()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_csrf(response: Response, token: str, *, secure: bool) -> None:
    # A day: long enough for a page left open, renewed by every form shown.
    set_cookie(response, CSRF_COOKIE, token, 86400, secure=secure)


def check_csrf(request: Request, form: Form) -> None:
    expected = cookie(request, CSRF_COOKIE)
    presented = form.get(CSRF_FIELD)
    if expected is None or presented is None:
        raise CsrfRejected(detail="missing")
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise CsrfRejected(detail="mismatch")


def published_keys(runtime: Runtime, now: float) -> KeySet:
    """The node's published keys, which an ID token hint was signed with."""
    body, _ = runtime.minter.keyring.jwks(now)
    return KeySet.import_key_set(json.loads(body))
