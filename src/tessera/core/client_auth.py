"""Client authentication with a secret (RFC 6749 §2.3.1), or with a signed
JWT (``private_key_jwt``, see tessera.core.client_assertion), or none at all
for a public client (RFC 6749 §2.1; ``none`` in RFC 7591 §2).

``client_secret_basic``, ``client_secret_post``, ``private_key_jwt`` and
``none``; one method per request, and each client uses the one it was
registered with. A ``client_id`` alone proves nothing: it is accepted only
for a client registered as public, which the token endpoint then lets use
nothing but the grants whose proof is elsewhere (a PKCE verifier, a refresh
token bound to it).
Unknown, disabled and wrong-secret clients take the same path and the same
work, and fail with the same error, so responses reveal no client ids. An
assertion names its client in the clear, so private_key_jwt spends no such
effort: an unknown client fails, with the same error, before any key is read.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from tessera.core.client_assertion import (
    ASSERTION_TYPE,
    PRIVATE_KEY_JWT,
    ClientAssertions,
    peek_client_id,
)
from tessera.core.clients import Client, ClientDirectory
from tessera.core.errors import InvalidClient, InvalidRequest
from tessera.core.form import Form
from tessera.core.secrets import looks_like_secret, secret_matches

_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_DUMMY_HASH = b"\0" * 32
# The auth_method of a client with a secret (a name, not a secret).
CLIENT_SECRET = "client_secret"  # noqa: S105
# The auth_method of a public client, which has no credentials.
PUBLIC = "none"


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    secret: str
    method: str
    # The client_assertion of a private_key_jwt request (secret is then "");
    # kept out of repr so that no log line can ever show it.
    assertion: str | None = field(default=None, repr=False)

    @property
    def basic(self) -> bool:
        return self.method == "client_secret_basic"


def read_credentials(authorization: str | None, form: Form) -> Credentials:
    body_id = form.get("client_id")
    body_secret = form.get("client_secret")
    if "client_assertion" in form or "client_assertion_type" in form:
        if authorization is not None or body_secret is not None:
            raise InvalidRequest("Use one client authentication method, not two.")
        return _read_assertion(body_id, form)
    if authorization is not None:
        basic = _parse_basic(authorization)
        if body_secret is not None:
            raise InvalidRequest("Use one client authentication method, not two.")
        if body_id is not None and body_id != basic.client_id:
            raise InvalidRequest("The client_id does not match the credentials.")
        return basic
    if body_secret is not None:
        if body_id is None:
            raise InvalidRequest("The client_id parameter is missing.")
        return Credentials(body_id, body_secret, "client_secret_post")
    if body_id is not None:
        # Only a public client may stop here; authenticate checks it is one.
        return Credentials(body_id, "", PUBLIC)
    raise InvalidClient(detail="no client authentication")


def _read_assertion(body_id: str | None, form: Form) -> Credentials:
    """RFC 7521 §4.2: the assertion, of the one type understood. Without a
    client_id, the client is the one the assertion names."""
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if assertion_type is None:
        raise InvalidRequest("The client_assertion_type parameter is missing.")
    if assertion_type != ASSERTION_TYPE:
        raise InvalidRequest("The client_assertion_type is not supported.")
    if assertion is None:
        raise InvalidRequest("The client_assertion parameter is missing.")
    client_id = body_id if body_id is not None else peek_client_id(assertion)
    return Credentials(client_id, "", PRIVATE_KEY_JWT, assertion)


def loggable_client_id(presented: str | None) -> str | None:
    """The presented client id as the audit log may show it. A well-formed
    id is shown as it is; anything else (a token or a secret pasted into the
    wrong field, a megabyte of junk) only as a digest, so the log never
    holds a credential."""
    if presented is None:
        return None
    if (
        _CLIENT_ID.match(presented)
        and not looks_like_secret(presented)
        # A JWT starts with the base64url of '{"'.
        and not presented.startswith("eyJ")
    ):
        return presented
    digest = hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()
    return "sha256:" + digest[:16]


def _parse_basic(authorization: str) -> Credentials:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient(detail="unsupported authentication scheme", basic=True)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:
        # binascii.Error, UnicodeDecodeError, and the plain ValueError that
        # b64decode raises for non-ASCII characters (raw bytes in the header).
        raise InvalidClient(detail="malformed basic credentials", basic=True) from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient(detail="malformed basic credentials", basic=True)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    try:
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except UnicodeDecodeError:
        raise InvalidClient(detail="malformed basic credentials", basic=True) from None
    return Credentials(client_id, secret, "client_secret_basic")


async def authenticate(
    credentials: Credentials,
    clients: ClientDirectory,
    pepper: bytes,
    now: float,
    assertions: ClientAssertions | None = None,
) -> Client:
    """The client the credentials prove; ``assertions`` verifies the
    private_key_jwt ones (without it, they all fail)."""
    client = None
    if _CLIENT_ID.match(credentials.client_id):
        client = await clients.get(credentials.client_id)
    if credentials.method == PRIVATE_KEY_JWT:
        return await _authenticate_assertion(credentials, client, assertions, now)
    if credentials.method == PUBLIC:
        return _identify_public(client)

    current, previous = client.secret_hashes(now) if client else (_DUMMY_HASH, None)
    matched = secret_matches(pepper, credentials.secret, current, previous)
    reason = (
        "unknown client"
        if client is None
        else "client disabled"
        if client.disabled
        # Its stored hash is of a secret nobody knows; refused by name anyway.
        else "client does not authenticate with a secret"
        if client.auth_method != CLIENT_SECRET
        else "wrong secret"
        if not matched
        else None
    )
    if reason is not None:
        raise InvalidClient(detail=reason, basic=credentials.basic)
    assert client is not None
    return client


def _identify_public(client: Client | None) -> Client:
    """A bare client_id names a public client; for any other client it is
    a request without authentication, refused as one."""
    if client is None:
        raise InvalidClient(detail="unknown client")
    if client.disabled:
        raise InvalidClient(detail="client disabled")
    if client.auth_method != PUBLIC:
        raise InvalidClient(detail="no client authentication")
    return client


async def _authenticate_assertion(
    credentials: Credentials,
    client: Client | None,
    assertions: ClientAssertions | None,
    now: float,
) -> Client:
    if client is None:
        raise InvalidClient(detail="unknown client")
    if client.disabled:
        raise InvalidClient(detail="client disabled")
    if client.auth_method != PRIVATE_KEY_JWT:
        raise InvalidClient(detail="client does not authenticate with private_key_jwt")
    if assertions is None or credentials.assertion is None:
        raise InvalidClient(detail="private_key_jwt is not available here")
    await assertions.verify(credentials.assertion, client, now)
    return client
