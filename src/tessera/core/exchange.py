"""Federated grants: an external identity token in, a Tessera access token
out, under the trust policies (tessera.core.federation).

- Token exchange (RFC 8693): ``subject_token`` with a ``subject_token_type``
  of jwt or id_token; ``resource``, ``audience`` and ``scope`` narrow what
  the policy grants. The response names the ``issued_token_type``.
- JWT bearer (RFC 7523 §2.1): the same, with the token as ``assertion``.

Both run one pipeline:

    read_subject_token → load_policies (by the token's unverified issuer)
    → verify (signature and times, against that issuer's keys only)
    → match_policy → resolve_scope → resolve_audiences → issue

Client authentication is optional: a CI job has no secret, and that is the
point. The issued token's ``client_id`` is then ``policy:NAME``, its ``act``
claim names the external issuer and subject, and ``trust_policy`` the
policy, so every token can be traced to the workload it went to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tessera.core.audit import Audit
from tessera.core.clients import Client
from tessera.core.errors import InvalidGrant, InvalidRequest, OAuthError
from tessera.core.federation import TrustPolicy
from tessera.core.form import Form
from tessera.core.minting import AccessTokenMinter
from tessera.core.scopes import resolve_audiences, resolve_scope

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FEDERATED_GRANT_TYPES = frozenset({TOKEN_EXCHANGE, JWT_BEARER})

JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
_SUBJECT_TOKEN_TYPES = frozenset({JWT_TYPE, ID_TOKEN_TYPE})
# What may be asked for: an access token, which is also a JWT.
_REQUESTABLE_TYPES = frozenset({ACCESS_TOKEN_TYPE, JWT_TYPE})

POLICY_CLIENT_PREFIX = "policy:"


class ExternalTokens(Protocol):
    def issuer_of(self, token: str) -> str | None:
        """The token's unverified ``iss``, used only to choose whose keys to
        check it with; None when the token cannot be read."""
        ...

    async def verify(
        self, token: str, issuer: str, *, pinned_jwks: str | None
    ) -> dict[str, Any]:
        """The claims once the signature, ``iss`` and times hold (not
        ``aud``); InvalidGrant otherwise, TemporarilyUnavailable when the
        issuer's keys cannot be had."""
        ...


class PolicyDirectory(Protocol):
    def for_issuer(self, issuer: str) -> list[TrustPolicy]:
        """The enabled policies naming ``issuer``, in name order."""
        ...

    def get(self, name: str) -> TrustPolicy | None: ...


@dataclass(frozen=True, slots=True)
class Grant:
    body: dict[str, Any]


class FederatedGrants:
    def __init__(
        self,
        policies: PolicyDirectory,
        external: ExternalTokens,
        minter: AccessTokenMinter,
        *,
        audit: Audit,
        clock: Callable[[], float],
    ) -> None:
        self._policies = policies
        self._external = external
        self._minter = minter
        self._audit = audit
        self._clock = clock

    async def handle(
        self, grant_type: str, form: Form, client: Client | None, now: float
    ) -> Grant:
        """Issue a token for the external token in ``form``; ``client`` is
        the authenticated client, if the request had one."""
        policy_names: list[str] = []
        external: dict[str, Any] = {}
        claimed_issuer = None
        try:
            token = read_subject_token(grant_type, form)
            claimed_issuer = self._external.issuer_of(token)
            policies = self._load_policies(claimed_issuer)
            policy_names = [policy.name for policy in policies]
            # Every candidate policy names the same issuer and, when pinned,
            # may pin other keys: verify against the first one's keys, then
            # each policy with other pinned keys on its own.
            external = await self._verify(token, policies[0])
            policy = await self._match(token, policies, external)
            scopes = resolve_scope(form.get("scope"), policy)
            audiences = resolve_audiences(
                form.get_all("resource"), form.get_all("audience"), policy
            )
        except OAuthError as raised:
            error = for_grant(grant_type, raised)
            self._audit.emit(
                "token.denied",
                grant_type=grant_type,
                client_id=client.client_id if client else None,
                policies=policy_names,
                # Unverified, and cut short: it says which issuer a refused
                # token claimed, for an operator missing a policy.
                claimed_issuer=claimed_issuer[:200] if claimed_issuer else None,
                external_issuer=external.get("iss"),
                external_subject=external.get("sub"),
                error=error.error,
                reason=error.detail or error.description,
                authentication_failed=False,
            )
            if error is raised:
                raise
            raise error from None
        return self._issue(grant_type, policy, external, client, scopes, audiences, now)

    def _load_policies(self, issuer: str | None) -> list[TrustPolicy]:
        if issuer is None:
            raise InvalidGrant(detail="the external token cannot be read")
        policies = self._policies.for_issuer(issuer)
        if not policies:
            raise InvalidGrant(detail="no trust policy for the issuer")
        return policies

    async def _verify(self, token: str, policy: TrustPolicy) -> dict[str, Any]:
        try:
            return await self._external.verify(
                token, policy.issuer, pinned_jwks=policy.pinned_jwks
            )
        except ValueError as error:
            # A policy the CLI would not have stored (its pinned keys or
            # issuer unusable): no token, and a reason in the audit log.
            raise InvalidGrant(detail=f"policy {policy.name}: {error}") from None

    async def _match(
        self, token: str, policies: list[TrustPolicy], claims: dict[str, Any]
    ) -> TrustPolicy:
        failures = []
        for policy in policies:
            if policy.pinned_jwks != policies[0].pinned_jwks:
                try:
                    await self._verify(token, policy)
                except InvalidGrant as error:
                    failures.append(f"{policy.name}: {error.detail}")
                    continue
            reason = policy.first_failure(claims)
            if reason is None:
                return policy
            failures.append(f"{policy.name}: {reason}")
        raise InvalidGrant(detail="no policy matched (" + "; ".join(failures) + ")")

    def _issue(
        self,
        grant_type: str,
        policy: TrustPolicy,
        external: dict[str, Any],
        client: Client | None,
        scopes: frozenset[str],
        audiences: tuple[str, ...],
        now: float,
    ) -> Grant:
        subject = policy.subject_for(external)
        assert subject is not None  # first_failure checked it
        client_id = client.client_id if client else POLICY_CLIENT_PREFIX + policy.name
        scope = " ".join(sorted(scopes))
        issued = self._minter.mint_for(
            client_id,
            subject,
            scope,
            audiences,
            now,
            ttl=policy.max_ttl,
            extra={
                "act": {"iss": external["iss"], "sub": external["sub"]},
                "trust_policy": policy.name,
            },
        )
        self._audit.emit(
            "token.issued",
            client_id=client_id,
            grant_type=grant_type,
            policy=policy.name,
            external_issuer=external["iss"],
            external_subject=external["sub"],
            subject=subject,
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
        if grant_type == TOKEN_EXCHANGE:
            body["issued_token_type"] = ACCESS_TOKEN_TYPE
        if scope:
            body["scope"] = scope
        return Grant(body)


def for_grant(grant_type: str, error: OAuthError) -> OAuthError:
    """The error as the grant's RFC names it. RFC 7523 §3.1 answers a bad
    assertion with invalid_grant; RFC 8693 §2.2.2 answers a subject token
    that is invalid, or unacceptable under policy, with invalid_request."""
    if grant_type == TOKEN_EXCHANGE and isinstance(error, InvalidGrant):
        return InvalidRequest(
            "The subject token is invalid or not acceptable.", detail=error.detail
        )
    return error


def read_subject_token(grant_type: str, form: Form) -> str:
    """The external token of either grant, its parameters checked first."""
    if grant_type == JWT_BEARER:
        return form.require("assertion")
    token = form.require("subject_token")
    if form.require("subject_token_type") not in _SUBJECT_TOKEN_TYPES:
        # RFC 8693 §2.2.2: an unsupported token type is invalid_request.
        raise InvalidRequest("The subject_token_type must be jwt or id_token.")
    requested = form.get("requested_token_type")
    if requested is not None and requested not in _REQUESTABLE_TYPES:
        raise InvalidRequest("Only access tokens can be requested.")
    if form.get("actor_token") is not None or form.get("actor_token_type"):
        raise InvalidRequest("Delegation with an actor_token is not supported.")
    return token
