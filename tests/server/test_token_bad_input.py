"""The token endpoint refuses every malformed or unauthorised request with
its RFC 6749 §5.2 error, and never with a 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx
import pytest

from tests.server.helpers import (
    AUTH_FAILED,
    BASIC_CHALLENGE,
    FORM,
    GRANT,
    assert_error,
    basic,
    raw_basic,
    unique,
)
from tests.support import RunningServer

WRONG_SECRET = "tsec_not-the-right-secret"
# Shaped like a JWT, and far longer than any real credential.
HUGE_JWT = "eyJhbGciOiJFUzI1NiJ9." + "eyJzdWIiOiJ4In0" * 800 + ".c2ln"


@dataclass(frozen=True)
class Roles:
    """Client ids on the session server, by the role they play here."""

    good: str
    disabled: str
    no_grant: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def roles(server: RunningServer) -> Roles:
    ids = {
        "good": unique("bad-input-good"),
        "disabled": unique("bad-input-disabled"),
        "no_grant": unique("bad-input-no-grant"),
    }
    server.create_client(ids["good"])
    server.create_client(ids["disabled"], disabled=True)
    server.create_client(ids["no_grant"], grant_types=frozenset({"urn:example:none"}))
    secrets = {role: server.secrets[client_id] for role, client_id in ids.items()}
    return Roles(**ids, secrets=secrets)


@dataclass(frozen=True)
class Basic:
    """client_secret_basic for the client in ``role`` ("unknown": no such
    client), with its real secret unless ``secret`` is given."""

    role: str = "good"
    secret: str | None = None


@dataclass(frozen=True)
class Post:
    """client_secret_post, as Basic; ``secret=""`` sends client_id alone."""

    role: str = "good"
    secret: str | None = None


Auth = Basic | Post | str | bytes | None


@dataclass(frozen=True)
class Req:
    body: str | bytes = GRANT
    # A method, several methods at once, or a raw Authorization value.
    auth: Auth | tuple[Auth, ...] = Basic()
    method: str = "POST"
    content_type: str | None = FORM
    chunked: bool = False
    headers: tuple[tuple[str, str], ...] = field(default=())


def send(http: httpx.Client, req: Req, roles: Roles) -> httpx.Response:
    body = req.body.encode() if isinstance(req.body, str) else req.body
    headers: list[tuple[str, str | bytes]] = list(req.headers)
    if req.content_type is not None:
        headers.append(("Content-Type", req.content_type))
    methods = req.auth if isinstance(req.auth, tuple) else (req.auth,)
    for auth in methods:
        if isinstance(auth, (str, bytes)):
            headers.append(("Authorization", auth))
            continue
        if auth is None:
            continue
        client_id = getattr(roles, auth.role, None) or unique("unknown")
        secret = roles.secrets.get(auth.role, WRONG_SECRET)
        secret = secret if auth.secret is None else auth.secret
        if isinstance(auth, Basic):
            headers.append(("Authorization", basic(client_id, secret)))
        else:
            pairs = {"client_id": client_id, "client_secret": secret}
            body += b"&" + urlencode({k: v for k, v in pairs.items() if v}).encode()
    content: bytes | Iterator[bytes] = body
    if req.chunked:
        content = iter([body[i : i + 1024] for i in range(0, len(body), 1024)])
    return http.request(req.method, "/oauth2/token", content=content, headers=headers)


# What a client is told when it sends the wrong thing; never the reason.
NOT_FORM = "The content type must be application/x-www-form-urlencoded."
NOT_UTF8 = "The request body is not valid form-urlencoded UTF-8."
NOT_FORM_DATA = "The request body is not valid form data."
BAD_ESCAPE = "The request body has a malformed percent-escape."
CONTROL = "A parameter contains a control character."
TOO_LARGE = "The request body is too large."
NOT_ALLOWED = "The request method is not allowed."
REPEATED_HEADER = "A header is repeated."
OVERSIZED = GRANT + "&pad=" + "a" * (16 * 1024)


def case(
    id: str,
    req: Req,
    status: int,
    error: str,
    description: str,
    *,
    challenge: bool = False,
    allow: str | None = None,
) -> object:
    return pytest.param(req, status, error, description, challenge, allow, id=id)


CASES = [
    # Parameters (RFC 6749 §3.2, §4.4.2, §5.2).
    case(
        "missing-grant-type",
        Req(body="scope=read"),
        400,
        "invalid_request",
        "The grant_type parameter is missing.",
    ),
    case(
        "empty-grant-type",
        Req(body="grant_type="),
        400,
        "invalid_request",
        "The grant_type parameter is missing.",
    ),
    case(
        "unknown-grant-type",
        Req(body="grant_type=password&username=a&password=b"),
        400,
        "unsupported_grant_type",
        "The grant type is not supported.",
    ),
    case(
        "client-not-allowed-the-grant",
        Req(auth=Basic("no_grant")),
        400,
        "unauthorized_client",
        "The client may not use this grant type.",
    ),
    case(
        "repeated-grant-type",
        Req(body=GRANT + "&" + GRANT),
        400,
        "invalid_request",
        "The grant_type parameter is repeated.",
    ),
    case(
        "repeated-scope",
        Req(body=GRANT + "&scope=read&scope=write"),
        400,
        "invalid_request",
        "The scope parameter is repeated.",
    ),
    case(
        "repeated-client-id",
        Req(body=GRANT + "&client_id=a", auth=Post()),
        400,
        "invalid_request",
        "The client_id parameter is repeated.",
    ),
    # Client authentication (RFC 6749 §2.3).
    case(
        "basic-and-post-together",
        Req(auth=(Basic(), Post())),
        400,
        "invalid_request",
        "Use one client authentication method, not two.",
    ),
    case(
        "basic-id-differs-from-body-id",
        Req(body=GRANT + "&client_id=someone-else"),
        400,
        "invalid_request",
        "The client_id does not match the credentials.",
    ),
    case(
        "secret-in-body-without-id",
        Req(body=GRANT + "&client_secret=x", auth=None),
        400,
        "invalid_request",
        "The client_id parameter is missing.",
    ),
    case(
        "two-authorization-headers",
        Req(auth=(Basic(), Basic())),
        400,
        "invalid_request",
        REPEATED_HEADER,
    ),
    case(
        "two-content-type-headers",
        Req(headers=(("Content-Type", FORM),)),
        400,
        "invalid_request",
        REPEATED_HEADER,
    ),
    case("no-client-auth", Req(auth=None), 401, "invalid_client", AUTH_FAILED),
    case(
        "client-id-alone-in-body",
        Req(auth=Post(secret="")),
        401,
        "invalid_client",
        AUTH_FAILED,
    ),
    case(
        "unknown-client-basic",
        Req(auth=Basic("unknown")),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "unknown-client-post",
        Req(auth=Post("unknown")),
        401,
        "invalid_client",
        AUTH_FAILED,
    ),
    case(
        "wrong-secret-basic",
        Req(auth=Basic(secret=WRONG_SECRET)),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "wrong-secret-post",
        Req(auth=Post(secret=WRONG_SECRET)),
        401,
        "invalid_client",
        AUTH_FAILED,
    ),
    case(
        "disabled-client-basic",
        Req(auth=Basic("disabled")),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "disabled-client-post",
        Req(auth=Post("disabled")),
        401,
        "invalid_client",
        AUTH_FAILED,
    ),
    case(
        "basic-not-base64",
        Req(auth="Basic !!!not-base64!!!"),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "basic-without-colon",
        Req(auth=raw_basic("just-an-id")),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "basic-empty",
        Req(auth="Basic"),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "basic-decodes-to-invalid-utf8",
        Req(auth=raw_basic(b"\xff\xfe:\xfd")),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "basic-percent-escape-not-utf8",
        Req(auth=raw_basic("%ff:secret")),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "basic-raw-non-ascii-bytes",
        Req(auth=b"Basic \xe9t\xe9"),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "basic-client-id-too-long",
        Req(auth=raw_basic("x" * 129 + ":secret")),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "basic-client-id-with-control-character",
        Req(auth=raw_basic("bad%0aid:secret")),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "bearer-scheme",
        Req(auth="Bearer " + HUGE_JWT[:200]),
        401,
        "invalid_client",
        AUTH_FAILED,
        challenge=True,
    ),
    case(
        "huge-jwt-like-secret",
        Req(auth=Post(secret=HUGE_JWT)),
        401,
        "invalid_client",
        AUTH_FAILED,
    ),
    case(
        "huge-jwt-like-client-id",
        Req(body=GRANT + "&client_secret=x&client_id=" + HUGE_JWT, auth=None),
        401,
        "invalid_client",
        AUTH_FAILED,
    ),
    case(
        "huge-jwt-like-client-assertion",
        Req(
            body=GRANT
            + "&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:"
            + "jwt-bearer&client_assertion="
            + HUGE_JWT,
            auth=None,
        ),
        401,
        "invalid_client",
        AUTH_FAILED,
    ),
    case(
        "client-assertion-without-its-type",
        Req(body=GRANT + "&client_assertion=" + HUGE_JWT, auth=None),
        400,
        "invalid_request",
        "The client_assertion_type parameter is missing.",
    ),
    # The HTTP request itself.
    case(
        "json-content-type",
        Req(
            body='{"grant_type": "client_credentials"}', content_type="application/json"
        ),
        400,
        "invalid_request",
        NOT_FORM,
    ),
    case(
        "multipart-content-type",
        Req(
            body='--b\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n'
            "client_credentials\r\n--b--\r\n",
            content_type="multipart/form-data; boundary=b",
        ),
        400,
        "invalid_request",
        NOT_FORM,
    ),
    case("no-content-type", Req(content_type=None), 400, "invalid_request", NOT_FORM),
    case(
        "latin1-charset",
        Req(content_type=FORM + "; charset=iso-8859-1"),
        400,
        "invalid_request",
        "The request body must be UTF-8.",
    ),
    case(
        "get-method",
        Req(method="GET", body=b"", content_type=None),
        405,
        "invalid_request",
        NOT_ALLOWED,
        allow="POST",
    ),
    case(
        "put-method",
        Req(method="PUT"),
        405,
        "invalid_request",
        NOT_ALLOWED,
        allow="POST",
    ),
    case(
        "oversized-with-content-length",
        Req(body=OVERSIZED),
        413,
        "invalid_request",
        TOO_LARGE,
    ),
    case(
        "oversized-chunked",
        Req(body=OVERSIZED, chunked=True),
        413,
        "invalid_request",
        TOO_LARGE,
    ),
    # The form body.
    case(
        "percent-escape-not-utf8",
        Req(body=GRANT + "&scope=%ff"),
        400,
        "invalid_request",
        NOT_UTF8,
    ),
    case(
        "malformed-percent-escape",
        Req(body=GRANT + "&scope=50%zz"),
        400,
        "invalid_request",
        BAD_ESCAPE,
    ),
    case(
        "lone-percent",
        Req(body=GRANT + "&scope=%"),
        400,
        "invalid_request",
        BAD_ESCAPE,
    ),
    case(
        "raw-non-ascii-bytes",
        Req(body=GRANT.encode() + b"&scope=\xc3\xa9"),
        400,
        "invalid_request",
        NOT_UTF8,
    ),
    case(
        "nul-in-value",
        Req(body=GRANT + "&scope=read%00"),
        400,
        "invalid_request",
        CONTROL,
    ),
    case(
        "newline-in-value",
        Req(body=GRANT + "&scope=read%0awrite"),
        400,
        "invalid_request",
        CONTROL,
    ),
    case(
        "control-character-in-name",
        Req(body=GRANT + "&sc%01ope=read"),
        400,
        "invalid_request",
        CONTROL,
    ),
    case("malformed-form", Req(body="a&&b"), 400, "invalid_request", NOT_FORM_DATA),
    case(
        "trailing-ampersand",
        Req(body=GRANT + "&"),
        400,
        "invalid_request",
        NOT_FORM_DATA,
    ),
    case(
        "empty-body",
        Req(body=""),
        400,
        "invalid_request",
        "The grant_type parameter is missing.",
    ),
    case(
        "more-than-64-fields",
        Req(body=GRANT + "".join(f"&x{i}=1" for i in range(64))),
        400,
        "invalid_request",
        NOT_FORM_DATA,
    ),
]


@pytest.mark.parametrize(
    ("req", "status", "error", "description", "challenge", "allow"), CASES
)
def test_token_request_is_refused(
    http: httpx.Client,
    roles: Roles,
    req: Req,
    status: int,
    error: str,
    description: str,
    challenge: bool,
    allow: str | None,
) -> None:
    response = send(http, req, roles)

    assert_error(response, status, error, description)
    assert response.headers.get("www-authenticate") == (
        BASIC_CHALLENGE if challenge else None
    )
    assert response.headers.get("allow") == allow
