"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3).

    check_code_params → load_code (redeemed: marked used in the same step)
    → reject_reused → check_expiry → check_client_binding
    → check_redirect_uri → check_pkce → check_person
    → issue (access token, refresh token, ID token) → record_issued

A code is used once. Redeeming it marks it used atomically, so of any
number of parallel redemptions one goes on; every other one fails, and
revokes what the first issued (RFC 6749 §10.5, RFC 9700 §4.2.3): a code
presented twice has leaked. The first may not have recorded what it issued
yet; it then learns of the reuse from ``record_issued`` and revokes its own
tokens. Either way, nothing issued from a reused code stays valid.

A failed redemption (wrong client, verifier or redirect URI) uses the code
up too: whoever tried it, the code is known to more than its client.

A refresh token is issued when the client may use the refresh_token grant,
and only then: a token its client could never redeem is only a liability.
``offline_access`` is not required for it: these refresh tokens are not
tied to the browser session in the first place.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Protocol

from tessera.core.audit import Audit
from tessera.core.client_auth import PUBLIC
from tessera.core.clients import Client
from tessera.core.errors import InvalidGrant, InvalidRequest
from tessera.core.form import Form
from tessera.core.introspection import RevocationStore
from tessera.core.refresh import REFRESH_TOKEN, RefreshTokens
from tessera.core.user_tokens import (
    Authorization,
    UserTokens,
    granted_scope,
    token_response,
)

AUTHORIZATION_CODE = "authorization_code"
# RFC 7636 §4.1: 43 to 128 unreserved characters.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


class Code(Protocol):
    """An issued code as redemption returns it."""

    @property
    def client_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def redirect_uri(self) -> str: ...

    @property
    def redirect_uri_given(self) -> bool: ...

    @property
    def scope(self) -> str: ...

    @property
    def code_challenge(self) -> str | None: ...

    @property
    def nonce(self) -> str | None: ...

    @property
    def auth_time(self) -> int: ...

    @property
    def expires_at(self) -> int: ...


class Redemption(Protocol):
    @property
    def code(self) -> Code: ...

    @property
    def reused(self) -> bool: ...

    @property
    def family_id(self) -> str | None: ...

    @property
    def access_token_jti(self) -> str | None: ...

    @property
    def access_token_expires_at(self) -> int | None: ...


class CodeStore(Protocol):
    async def redeem(self, value: str, now: int) -> Redemption | None:
        """Mark the code used and return it, ``reused`` when it had been
        used before; None for a code never issued. One conditional UPDATE
        decides, so of parallel redemptions exactly one is not ``reused``."""
        ...

    async def record_issued(
        self,
        value: str,
        *,
        family_id: str | None,
        access_token_jti: str,
        access_token_expires_at: int,
    ) -> bool:
        """Remember what the redemption issued; True when the code was
        reused meanwhile, and the caller is to revoke it all."""
        ...


@dataclass(frozen=True, slots=True)
class CodeParams:
    code: str
    redirect_uri: str | None
    code_verifier: str | None


class AuthorizationCodeGrant:
    def __init__(
        self,
        codes: CodeStore,
        tokens: UserTokens,
        refresh: RefreshTokens,
        revocations: RevocationStore,
        *,
        audit: Audit,
    ) -> None:
        self._codes = codes
        self._tokens = tokens
        self._refresh = refresh
        self._revocations = revocations
        self._audit = audit

    async def handle(self, form: Form, client: Client, now: float) -> dict[str, Any]:
        params = check_code_params(form)
        redemption = await self._load_code(params.code, now)
        await self._reject_reused(redemption, client, now)
        code = redemption.code
        check_expiry(code, now)
        check_client_binding(code, client)
        check_redirect_uri(code, params)
        check_pkce(code, params, client)
        await self._tokens.check_person(code.user_id)

        return await self._issue(client, code, params.code, now)

    async def _issue(
        self, client: Client, code: Code, value: str, now: float
    ) -> dict[str, Any]:
        """The tokens, then a note on the code of what they were, so that a
        later redemption can revoke them."""
        grant = Authorization(
            code.user_id,
            granted_scope(frozenset(code.scope.split()), client),
            code.auth_time,
            code.nonce,
        )
        issued = self._tokens.issue(client, grant, now, grant_type=AUTHORIZATION_CODE)
        refresh_token, family_id = None, None
        if REFRESH_TOKEN in client.grant_types:
            refresh_token, family_id = await self._refresh.start_family(
                client.client_id, grant, now
            )
        expires_at = int(now) + issued.access.expires_in
        if await self._codes.record_issued(
            value,
            family_id=family_id,
            access_token_jti=issued.access.jti,
            access_token_expires_at=expires_at,
        ):
            # Reused while this was issuing: what was issued is void already.
            await self._revoke(
                client.client_id, family_id, issued.access.jti, expires_at, now
            )
        return token_response(issued, refresh_token)

    async def _load_code(self, code: str, now: float) -> Redemption:
        redemption = await self._codes.redeem(code, int(now))
        if redemption is None:
            raise InvalidGrant(detail="unknown authorization code")
        return redemption

    async def _reject_reused(
        self, redemption: Redemption, client: Client, now: float
    ) -> None:
        if not redemption.reused:
            return
        code = redemption.code
        self._audit.emit(
            "authorization_code.reused",
            client_id=code.client_id,
            presented_by=client.client_id,
            subject=code.user_id,
            family_id=redemption.family_id,
            jti=redemption.access_token_jti,
        )
        await self._revoke(
            code.client_id,
            redemption.family_id,
            redemption.access_token_jti,
            redemption.access_token_expires_at,
            now,
        )
        raise InvalidGrant(detail="authorization code reused")

    async def _revoke(
        self,
        client_id: str,
        family_id: str | None,
        jti: str | None,
        expires_at: int | None,
        now: float,
    ) -> None:
        """Revoke what one redemption issued; a part it has not recorded
        yet is revoked by that redemption itself (see record_issued)."""
        if family_id is not None:
            await self._refresh.revoke_family(
                family_id, now, client_id=client_id, reason="authorization code reused"
            )
        if jti is not None and expires_at is not None:
            await self._revocations.revoke(jti, client_id, expires_at, int(now))


def check_code_params(form: Form) -> CodeParams:
    """RFC 6749 §4.1.3. Whether redirect_uri may be left out depends on
    the code (check_redirect_uri). The verifier's syntax (RFC 7636 §4.1) is
    checked before any lookup."""
    code = form.require("code")
    redirect_uri = form.get("redirect_uri")
    verifier = form.get("code_verifier")
    if verifier is not None and not _VERIFIER.match(verifier):
        raise InvalidRequest("The code_verifier is malformed.")
    return CodeParams(code, redirect_uri, verifier)


def check_expiry(code: Code, now: float) -> None:
    if code.expires_at <= now:
        raise InvalidGrant(detail="authorization code expired")


def check_client_binding(code: Code, client: Client) -> None:
    if code.client_id != client.client_id:
        raise InvalidGrant(detail="authorization code of another client")


def check_redirect_uri(code: Code, params: CodeParams) -> None:
    """RFC 6749 §4.1.3 and §10.6: the very URI the code was sent to,
    compared exactly. Only a request that named none (the client's one
    registered URI was used) may be redeemed without it."""
    if params.redirect_uri is None:
        if code.redirect_uri_given:
            raise InvalidRequest("The redirect_uri parameter is missing.")
        return
    if params.redirect_uri != code.redirect_uri:
        raise InvalidGrant(detail="redirect_uri differs from the authorization's")


def check_pkce(code: Code, params: CodeParams, client: Client) -> None:
    """RFC 7636 §4.6: BASE64URL(SHA256(verifier)) is the stored challenge.
    A verifier for a code issued without a challenge is refused too
    (RFC 9700 §4.8.2): it means the challenge was stripped on the way. A
    public client has nothing but PKCE to prove the code is its own, so its
    codes must have a challenge (RFC 9700 §2.1.1)."""
    challenge = code.code_challenge
    if challenge is None:
        if params.code_verifier is not None:
            raise InvalidGrant(detail="code_verifier for a code without challenge")
        if client.auth_method == PUBLIC:
            raise InvalidGrant(detail="public client's code has no challenge")
        return
    if params.code_verifier is None:
        raise InvalidGrant(detail="code_verifier missing")
    digest = hashlib.sha256(params.code_verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if not hmac.compare_digest(computed.encode(), challenge.encode()):
        raise InvalidGrant(detail="code_verifier does not match the challenge")
