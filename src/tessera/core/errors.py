"""The one error type, shaped like the RFC 6749 §5.2 / RFC 6750 §3.1 wire format.

    OAuthError                      error            status
    ├── InvalidRequest              invalid_request  400
    │   ├── RequestTooLarge                          413
    │   └── MethodNotAllowed                         405
    ├── InvalidClient               invalid_client   401
    ├── InvalidGrant                invalid_grant    400
    ├── UnauthorizedClient          unauthorized_client
    ├── UnsupportedGrantType        unsupported_grant_type
    ├── UnsupportedTokenType        unsupported_token_type
    ├── InvalidScope                invalid_scope    400
    ├── InvalidTarget               invalid_target   400
    ├── InvalidToken                invalid_token    401
    ├── InsufficientScope           insufficient_scope 403
    ├── ServerError                 server_error     500
    ├── TemporarilyUnavailable      temporarily_unavailable 503
    └── TooManyRequests             temporarily_unavailable 429

``description`` is safe to send to the client. ``detail`` is for logs only and
never leaves the process. Each raise builds a fresh instance; nothing shared
is ever mutated.
"""

from __future__ import annotations

import math


class OAuthError(Exception):
    error: str = "server_error"
    status: int = 500
    default_description: str = "The request could not be processed."

    def __init__(self, description: str | None = None, *, detail: str = "") -> None:
        self.description = description or self.default_description
        self.detail = detail
        super().__init__(f"{self.error}: {self.description}")

    def to_dict(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"
    status = 400
    default_description = "The request is malformed."


class RequestTooLarge(InvalidRequest):
    status = 413
    default_description = "The request body is too large."


class MethodNotAllowed(InvalidRequest):
    status = 405
    default_description = "The request method is not allowed."


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401
    default_description = "Client authentication failed."

    def __init__(
        self, description: str | None = None, *, detail: str = "", basic: bool = False
    ) -> None:
        super().__init__(description, detail=detail)
        # RFC 6749 §5.2: a client that tried HTTP Basic gets a Basic challenge.
        self.basic = basic


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status = 400
    default_description = "The grant is invalid."


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    status = 400
    default_description = "The client may not use this grant type."


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    status = 400
    default_description = "The grant type is not supported."


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"
    status = 400
    default_description = "The token type is not supported."


class InvalidScope(OAuthError):
    error = "invalid_scope"
    status = 400
    default_description = "The requested scope is invalid."


class InvalidTarget(OAuthError):
    error = "invalid_target"
    status = 400
    default_description = "The requested resource or audience is invalid."


class InvalidToken(OAuthError):
    error = "invalid_token"
    status = 401
    default_description = "The access token is invalid."


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403
    default_description = "The access token lacks the required scope."

    def __init__(
        self, scopes: frozenset[str] | set[str], description: str | None = None
    ) -> None:
        super().__init__(description, detail="missing " + " ".join(sorted(scopes)))
        self.scopes = frozenset(scopes)


class ServerError(OAuthError):
    default_description = "The server encountered an unexpected condition."


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503
    default_description = "The service is temporarily unavailable."
    retry_after = 5


class TooManyRequests(OAuthError):
    """Over a rate limit, or a client id locked out after failed attempts.

    RFC 6749 §5.2 has no code for this, so the body carries the registered
    ``temporarily_unavailable`` ("try again later"), and the status (RFC 6585
    §4) and ``Retry-After`` say how long. Rate limits and lockouts share one
    description: the answer must not tell which ids exist or are locked."""

    error = "temporarily_unavailable"
    status = 429
    default_description = "Too many requests; try again later."

    def __init__(
        self, wait: float, description: str | None = None, *, detail: str = ""
    ) -> None:
        super().__init__(description, detail=detail)
        # Retry-After is whole seconds (RFC 9110 §10.2.3): round up, so a
        # client that waits as told is not refused again.
        self.retry_after = max(1, math.ceil(wait))
