"""Client authentication with a secret (RFC 6749 §2.3.1).

``client_secret_basic`` and ``client_secret_post``; one method per request.
Unknown, disabled and wrong-secret clients take the same path and the same
work, and fail with the same error, so responses reveal no client ids.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from tessera.core.clients import Client, ClientDirectory
from tessera.core.errors import InvalidClient, InvalidRequest
from tessera.core.form import Form
from tessera.core.secrets import looks_like_secret, secret_matches

_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_DUMMY_HASH = b"\0" * 32


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    secret: str
    method: str

    @property
    def basic(self) -> bool:
        return self.method == "client_secret_basic"


def read_credentials(authorization: str | None, form: Form) -> Credentials:
    body_id = form.get("client_id")
    body_secret = form.get("client_secret")
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
    raise InvalidClient(detail="no client authentication")


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
    credentials: Credentials, clients: ClientDirectory, pepper: bytes, now: float
) -> Client:
    client = None
    if _CLIENT_ID.match(credentials.client_id):
        client = await clients.get(credentials.client_id)
    current, previous = client.secret_hashes(now) if client else (_DUMMY_HASH, None)
    matched = secret_matches(pepper, credentials.secret, current, previous)
    if client is None or not matched or client.disabled:
        reason = (
            "unknown client"
            if client is None
            else "client disabled"
            if client.disabled
            else "wrong secret"
        )
        raise InvalidClient(detail=reason, basic=credentials.basic)
    return client
