"""The token endpoint (RFC 6749 §3.2), as one ordered pipeline.

    read_credentials → admit (source and client rates, lockout: one step)
    → authenticate (failures counted)
    → check_grant_type → check_client_grant
    → resolve_scope → resolve_audiences → mint

The federated grants (token exchange, JWT bearer) may come without client
credentials; after the grant checks they go on in tessera.core.exchange.
The grants made on a person's behalf go on in their own pipelines:
authorization_code in tessera.core.code_grant, refresh_token in
tessera.core.refresh. A public client (a bare client_id) may use only those
two, whose proof is a PKCE verifier or a refresh token bound to it.

Each step raises the RFC 6749 §5.2 error that fits; the first to fail wins.
The rate and lockout steps (see tessera.core.limits) come before any secret
is checked, so a flood costs the node no hashing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tessera.core.audit import Audit
from tessera.core.client_auth import PUBLIC, loggable_client_id, read_credentials
from tessera.core.clients import Client, ClientDirectory
from tessera.core.code_grant import AUTHORIZATION_CODE
from tessera.core.errors import (
    InvalidClient,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tessera.core.exchange import FEDERATED_GRANT_TYPES, FederatedGrants
from tessera.core.form import Form
from tessera.core.limits import Guard
from tessera.core.minting import AccessTokenMinter
from tessera.core.refresh import REFRESH_TOKEN
from tessera.core.scopes import resolve_audiences, resolve_scope

USER_GRANT_TYPES = frozenset({AUTHORIZATION_CODE, REFRESH_TOKEN})
SUPPORTED_GRANT_TYPES = (
    frozenset({"client_credentials"}) | FEDERATED_GRANT_TYPES | USER_GRANT_TYPES
)


class UserGrant(Protocol):
    async def handle(self, form: Form, client: Client, now: float) -> dict[str, Any]:
        """The token response for an authenticated client's grant; raises
        the OAuthError that fits."""
        ...


@dataclass(frozen=True, slots=True)
class TokenResponse:
    body: dict[str, Any]


class TokenEndpoint:
    def __init__(
        self,
        clients: ClientDirectory,
        minter: AccessTokenMinter,
        *,
        pepper: bytes,
        audit: Audit,
        guard: Guard,
        federated: FederatedGrants | None = None,
        user_grants: Mapping[str, UserGrant] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clients = clients
        self._minter = minter
        self._pepper = pepper
        self._audit = audit
        self._guard = guard
        self._federated = federated
        self._user_grants = dict(user_grants or {})
        self._clock = clock

    async def handle(
        self, form: Form, authorization: str | None, source: str
    ) -> TokenResponse:
        """``source`` is the address the request is counted against."""
        client_id = None
        try:
            now = self._clock()
            try:
                grant_type = form.require("grant_type")
                credentials = None
                if grant_type not in FEDERATED_GRANT_TYPES or offers_credentials(
                    authorization, form
                ):
                    credentials = read_credentials(authorization, form)
            except OAuthError:
                # A malformed request still counts against its source.
                await self._guard.check_source_rate(source, now)
                raise
            client = None
            if credentials is None:
                await self._guard.check_source_rate(source, now)
            else:
                client_id = credentials.client_id
                admitted = await self._guard.admit(source, client_id, now)
                client = await self._guard.authenticate(
                    credentials, self._clients, self._pepper, now, admitted
                )
            check_grant_type(grant_type)
            if client is not None:
                check_client_grant(client, grant_type)
            if grant_type in FEDERATED_GRANT_TYPES and self._federated is None:
                raise UnsupportedGrantType(detail="federation not configured")
            if grant_type in USER_GRANT_TYPES and grant_type not in self._user_grants:
                raise UnsupportedGrantType(detail="grant not configured")
        except OAuthError as error:
            self._deny(error, client_id)
            raise

        if self._federated is not None and grant_type in FEDERATED_GRANT_TYPES:
            # Audits its own outcome, naming the policies it tried.
            grant = await self._federated.handle(grant_type, form, client, now)
            return TokenResponse(grant.body)
        assert client is not None
        try:
            user_grant = self._user_grants.get(grant_type)
            if user_grant is not None:
                return TokenResponse(await user_grant.handle(form, client, now))
            return self._client_credentials(client, form, now)
        except OAuthError as error:
            self._deny(error, client_id)
            raise

    def _deny(self, error: OAuthError, client_id: str | None) -> None:
        self._audit.emit(
            "token.denied",
            client_id=loggable_client_id(client_id),
            error=error.error,
            reason=error.detail or error.description,
            authentication_failed=isinstance(error, InvalidClient),
        )

    def _client_credentials(
        self, client: Client, form: Form, now: float
    ) -> TokenResponse:
        """RFC 6749 §4.4."""
        scopes = resolve_scope(form.get("scope"), client)
        audiences = resolve_audiences(
            form.get_all("resource"), form.get_all("audience"), client
        )
        scope = " ".join(sorted(scopes))
        issued = self._minter.mint(client, scope, audiences, now)
        self._audit.emit(
            "token.issued",
            client_id=client.client_id,
            grant_type="client_credentials",
            jti=issued.jti,
            kid=issued.kid,
            scope=scope,
            audience=list(audiences),
            expires_in=issued.expires_in,
        )
        body: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        }
        if scope:
            body["scope"] = scope
        return TokenResponse(body)


def offers_credentials(authorization: str | None, form: Form) -> bool:
    """Whether the request says who its client is. The federated grants may
    come without a client: the external token is the credential."""
    return authorization is not None or any(
        form.get(name) is not None
        for name in ("client_id", "client_secret", "client_assertion")
    )


def check_grant_type(grant_type: str) -> None:
    if grant_type not in SUPPORTED_GRANT_TYPES:
        raise UnsupportedGrantType(detail="grant type not supported")


def check_client_grant(client: Client, grant_type: str) -> None:
    if grant_type not in client.grant_types:
        raise UnauthorizedClient()
    if client.auth_method == PUBLIC and grant_type not in USER_GRANT_TYPES:
        # Whoever knows a public client's id could use any other grant.
        raise UnauthorizedClient(detail="public client")
