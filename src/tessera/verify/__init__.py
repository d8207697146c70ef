"""Bearer-token verification for resource servers.

    from tessera.verify import Verifier, protect

    verifier = Verifier("https://issuer.example", "https://api.example")
    app = protect(app, verifier, scopes=["orders.read"])

``Verifier.verify`` checks a JWT access token (RFC 9068) against the issuer's
published keys and returns an ``AccessToken`` or raises one of the errors
below. ``protect`` puts that check in front of any ASGI application and
answers refused requests as RFC 6750 §3 describes. ``Introspection`` adds a
revocation check (RFC 7662).

This package needs only ``cryptography`` and ``httpx``.
"""

from tessera.core.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    TemporarilyUnavailable,
)

from ._claims import AccessToken
from ._introspection import Introspection
from ._middleware import BearerProtection, protect
from ._verifier import DEFAULT_ALGORITHMS, Verifier

__all__ = [
    "AccessToken",
    "BearerProtection",
    "DEFAULT_ALGORITHMS",
    "InsufficientScope",
    "Introspection",
    "InvalidRequest",
    "InvalidToken",
    "OAuthError",
    "TemporarilyUnavailable",
    "Verifier",
    "protect",
]
