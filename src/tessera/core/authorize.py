"""The authorization endpoint (RFC 6749 §4.1.1), as one ordered pipeline.

    check_client → check_redirect_uri
    → reject_repeated → reject_request_objects → check_response_type
    → check_response_mode → check_client_grant → check_scope → check_pkce
    → check_prompt → check_max_age → (nonce, state: kept as sent)

A failure of the first two steps is shown to the person as a page, never
redirected: until the client and its redirect URI are known to be right, a
redirect would make the server an open redirector (RFC 9700 §4.11). A
failure of any later step is sent to the client's redirect URI with
``state`` and ``iss`` (RFC 6749 §4.1.2.1, RFC 9207).

Once a request is valid, ``next_step`` decides what the browser does next
(log in, consent, or get its code) from the session and remembered consent,
applying OpenID Connect's ``prompt`` and ``max_age`` (OIDC Core §3.1.2.1).

This module knows neither HTTP nor the database: it takes the parsed query
and a client directory, and returns a validated request or raises.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from joserfc.jwk import KeySet

from tessera.core.client_auth import PUBLIC
from tessera.core.clients import Client, ClientDirectory
from tessera.core.errors import (
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
)
from tessera.core.form import Form
from tessera.core.id_tokens import read_id_token_hint
from tessera.core.redirect_uris import redirect_matches, with_params
from tessera.core.scopes import resolve_scope

AUTHORIZATION_CODE = "authorization_code"
# What the endpoint reads; none of these may be repeated (RFC 6749 §3.1).
PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "response_mode",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "id_token_hint",
    "login_hint",
)
MAX_LOGIN_HINT = 128
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters, unpadded.
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_MAX_AGE = re.compile(r"^[0-9]{1,10}$")


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"
    status = 400
    default_description = "Only the response_type code is supported."


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403
    default_description = "The resource owner denied the request."


class LoginRequired(OAuthError):
    """OIDC Core §3.1.2.6: prompt=none, and nobody is signed in."""

    error = "login_required"
    status = 400
    default_description = "The user is not signed in."


class ConsentRequired(OAuthError):
    """OIDC Core §3.1.2.6: prompt=none, and consent would be asked for."""

    error = "consent_required"
    status = 400
    default_description = "The user has not consented to this request."


class RequestNotSupported(OAuthError):
    error = "request_not_supported"
    status = 400
    default_description = "Request objects are not supported."


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"
    status = 400
    default_description = "The request_uri parameter is not supported."


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the answer to a request goes, and what it always carries."""

    redirect_uri: str
    state: str | None
    issuer: str

    def url(self, **params: str | None) -> str:
        # RFC 9207 §2: iss lets the client tell which server answered.
        return with_params(
            self.redirect_uri, {**params, "state": self.state, "iss": self.issuer}
        )

    def error_url(self, error: OAuthError) -> str:
        return self.url(error=error.error, error_description=error.description)


class Redirected(Exception):
    """An error the client is told of at its redirect URI (RFC 6749
    §4.1.2.1), rather than one shown to the person."""

    def __init__(self, error: OAuthError, destination: Destination) -> None:
        super().__init__(str(error))
        self.error = error
        self.destination = destination

    @property
    def url(self) -> str:
        return self.destination.error_url(self.error)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated request, as stored while the person logs in or consents."""

    client_id: str
    redirect_uri: str
    scope: frozenset[str]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    prompt: frozenset[str]
    max_age: int | None
    # When the server received it: max_age is measured from here.
    received_at: int
    # False when the request named no redirect_uri and the client's only
    # one stands in (see check_redirect_uri).
    redirect_uri_given: bool = True
    # Whom the client believes is signed in: the subject of its
    # id_token_hint. A session of someone else does not answer for them.
    hint_subject: str | None = None
    # OIDC Core §3.1.2.1 login_hint: only ever the login form's first value.
    login_hint: str | None = None
    # The session started by a login made for this request, which satisfies
    # prompt=login and max_age whatever the clock says.
    login_session: str | None = None

    @property
    def forces_login(self) -> bool:
        """Whether only a login made for this very request will do: OIDC
        Core §3.1.2.1 prompt=login and select_account (the login form is
        where another account is chosen), and max_age=0."""
        return bool(self.prompt & {"login", "select_account"}) or self.max_age == 0

    def destination(self, issuer: str) -> Destination:
        return Destination(self.redirect_uri, self.state, issuer)

    def to_params(self) -> dict[str, Any]:
        """JSON-ready fields, for storing the request while the person logs
        in or consents."""
        params = {field.name: getattr(self, field.name) for field in fields(self)}
        return {**params, "scope": sorted(self.scope), "prompt": sorted(self.prompt)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AuthorizationRequest:
        names = {field.name for field in fields(cls)}
        known = {name: value for name, value in params.items() if name in names}
        return cls(
            **{
                **known,
                "scope": frozenset(params["scope"]),
                "prompt": frozenset(params["prompt"]),
            }
        )


async def validate(
    query: Form,
    clients: ClientDirectory,
    *,
    issuer: str,
    now: int,
    keys: Callable[[], KeySet],
) -> AuthorizationRequest:
    """The validated request. Raises an OAuthError to show as a page, or
    Redirected for an error the client is to receive. ``keys`` gives the
    issuer's published keys, asked for only to check an id_token_hint."""
    client = await check_client(query, clients)
    redirect_uri = check_redirect_uri(query, client)
    destination = Destination(redirect_uri, read_state(query), issuer)

    try:
        reject_repeated(query)
        reject_request_objects(query)
        check_response_type(query)
        check_response_mode(query)
        check_client_grant(client)
        scope = check_scope(query, client)
        code_challenge = check_pkce(query, client)
        prompt = check_prompt(query)
        max_age = check_max_age(query)
        hint_subject = check_id_token_hint(query, client, issuer, keys)
        login_hint = read_login_hint(query)
        nonce = query.get("nonce")
    except OAuthError as error:
        raise Redirected(error, destination) from None

    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=destination.state,
        nonce=nonce,
        code_challenge=code_challenge,
        prompt=prompt,
        max_age=max_age,
        received_at=now,
        redirect_uri_given=query.get("redirect_uri") is not None,
        hint_subject=hint_subject,
        login_hint=login_hint,
    )


async def check_client(query: Form, clients: ClientDirectory) -> Client:
    client_id = query.get("client_id")
    if client_id is None:
        raise InvalidRequest("The client_id parameter is missing.")
    client = await clients.get(client_id)
    if client is None or client.disabled:
        # The same answer for both: a page, never a redirect.
        raise InvalidRequest("The client is unknown or disabled.")
    return client


def check_redirect_uri(query: Form, client: Client) -> str:
    """The redirect URI the answer goes to. Omitted, it is the client's only
    registered one (RFC 6749 §3.1.2.3); given, it must match one exactly."""
    presented = query.get("redirect_uri")
    registered = client.redirect_uris
    if presented is None:
        if len(registered) != 1:
            raise InvalidRequest("The redirect_uri parameter is missing.")
        return registered[0]
    if not any(redirect_matches(uri, presented) for uri in registered):
        raise InvalidRequest("The redirect_uri is not registered for this client.")
    return presented


def read_state(query: Form) -> str | None:
    """The state to echo. A repeated state cannot be echoed; the request
    then fails with invalid_request, sent without one."""
    try:
        return query.get("state")
    except InvalidRequest:
        return None


def reject_repeated(query: Form) -> None:
    # RFC 6749 §3.1: no parameter may be included more than once.
    for name in PARAMETERS:
        query.get(name)


def reject_request_objects(query: Form) -> None:
    # OIDC Core §6: request objects are optional, and not implemented.
    if "request" in query:
        raise RequestNotSupported()
    if "request_uri" in query:
        raise RequestUriNotSupported()


def check_response_type(query: Form) -> None:
    response_type = query.get("response_type")
    if response_type is None:
        raise InvalidRequest("The response_type parameter is missing.")
    if response_type != "code":
        # The implicit and hybrid flows are gone (RFC 9700 §2.1.2).
        raise UnsupportedResponseType()


def check_response_mode(query: Form) -> None:
    response_mode = query.get("response_mode")
    if response_mode not in (None, "query"):
        raise InvalidRequest("Only the response_mode query is supported.")


def check_client_grant(client: Client) -> None:
    if AUTHORIZATION_CODE not in client.grant_types:
        raise UnauthorizedClient("The client may not use the authorization code grant.")


def check_scope(query: Form, client: Client) -> frozenset[str]:
    """The requested scope, all of it among the client's; the OpenID scopes
    (openid, profile, email, offline_access) too must be registered."""
    scope = resolve_scope(query.get("scope"), client)
    if not scope:
        raise InvalidScope("The scope parameter is missing.")
    return scope


def check_pkce(query: Form, client: Client) -> str | None:
    """The S256 code challenge (RFC 7636 §4.3), required of a public client
    and accepted from every client. ``plain`` is refused: it protects
    nothing once the request is seen (RFC 9700 §2.1.1)."""
    challenge = query.get("code_challenge")
    method = query.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method without code_challenge.")
        # A client that cannot keep a secret proves possession this way only.
        if client.auth_method == PUBLIC:
            raise InvalidRequest("A public client must send a PKCE code_challenge.")
        return None
    if method != "S256":
        # Absent, the method would be plain (RFC 7636 §4.3).
        raise InvalidRequest("The code_challenge_method must be S256.")
    if not _S256_CHALLENGE.match(challenge):
        raise InvalidRequest("The code_challenge is malformed.")
    return challenge


def check_id_token_hint(
    query: Form, client: Client, issuer: str, keys: Callable[[], KeySet]
) -> str | None:
    """The subject of the id_token_hint (OIDC Core §3.1.2.1): an ID token
    this issuer gave this client, expired or not."""
    token = query.get("id_token_hint")
    if token is None:
        return None
    hint = read_id_token_hint(token, issuer, keys())
    if hint.client_id != client.client_id:
        raise InvalidRequest("The id_token_hint was issued to another client.")
    return hint.subject


def read_login_hint(query: Form) -> str | None:
    """A username to offer on the login form. Control characters never get
    here (the query's parser refuses them); one too long to be a username
    is ignored, as the hint is only a convenience."""
    hint = query.get("login_hint")
    if hint is None or len(hint) > MAX_LOGIN_HINT:
        return None
    return hint


def check_prompt(query: Form) -> frozenset[str]:
    value = query.get("prompt")
    if value is None:
        return frozenset()
    prompt = frozenset(value.split(" "))
    if not prompt <= PROMPTS:
        raise InvalidRequest("The prompt parameter has an unknown value.")
    if "none" in prompt and len(prompt) > 1:
        # OIDC Core §3.1.2.1: none with any other value is an error.
        raise InvalidRequest("prompt=none cannot be combined with other values.")
    return prompt


def check_max_age(query: Form) -> int | None:
    value = query.get("max_age")
    if value is None:
        return None
    if not _MAX_AGE.match(value):
        raise InvalidRequest("The max_age parameter must be a non-negative integer.")
    return int(value)


class Step(enum.Enum):
    LOGIN = "login"
    CONSENT = "consent"
    ISSUE = "issue"


@dataclass(frozen=True, slots=True)
class Login:
    """The browser's session: which one, whose, and when they logged in."""

    session: str
    user_id: str
    auth_time: int


def next_step(
    request: AuthorizationRequest,
    *,
    issuer: str,
    login: Login | None,
    consented: frozenset[str],
) -> Step:
    """What the browser does next. ``login`` is the browser's session, None
    when nobody is signed in; ``consented`` the scopes the person has
    granted this client before. With prompt=none, a step that would need
    the person is an error sent to the client (OIDC Core §3.1.2.6)."""
    destination = request.destination(issuer)
    silent = "none" in request.prompt

    if not fresh_enough(request, login) or someone_else(request, login):
        if silent:
            raise Redirected(LoginRequired(), destination)
        return Step.LOGIN

    if "consent" in request.prompt or not request.scope <= consented:
        if silent:
            raise Redirected(ConsentRequired(), destination)
        return Step.CONSENT

    return Step.ISSUE


def someone_else(request: AuthorizationRequest, login: Login | None) -> bool:
    """Whether the session is of another person than the id_token_hint's.
    A login made for this very request stands, whoever made it."""
    if request.hint_subject is None or login is None:
        return False
    if request.login_session is not None and login.session == request.login_session:
        return False
    return login.user_id != request.hint_subject


def fresh_enough(request: AuthorizationRequest, login: Login | None) -> bool:
    """Whether the session satisfies prompt=login and max_age."""
    if login is None:
        return False
    if request.login_session is not None and login.session == request.login_session:
        return True
    if request.forces_login:
        return False
    if request.max_age is not None:
        return login.auth_time >= request.received_at - request.max_age
    return True
