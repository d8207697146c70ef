"""Authorization codes (RFC 6749 §4.1), stored as their SHA-256.

A code is redeemed once: ``redeem`` marks it used in the same UPDATE that
checks it was not, so of any number of parallel redemptions exactly one
wins, on every backend. A second redemption gets the row back with
``reused=True``, so the caller can revoke what the first one issued
(RFC 9700 §4.2.3)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.models import AuthorizationCodeRow


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedCode:
    client_id: str
    user_id: str
    redirect_uri: str
    redirect_uri_given: bool
    scope: str
    code_challenge: str | None
    nonce: str | None
    auth_time: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Redemption:
    code: IssuedCode
    # True when the code had been redeemed before: nothing may be issued,
    # and what the first redemption issued is to be revoked.
    reused: bool
    family_id: str | None
    access_token_jti: str | None
    access_token_expires_at: int | None


class AuthorizationCodes:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def issue(self, code: IssuedCode) -> str:
        """Store a new code and return it; only its hash is kept."""
        value = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            session.add(
                AuthorizationCodeRow(
                    code_hash=code_hash(value),
                    client_id=code.client_id,
                    user_id=code.user_id,
                    redirect_uri=code.redirect_uri,
                    redirect_uri_given=code.redirect_uri_given,
                    scope=code.scope,
                    code_challenge=code.code_challenge,
                    nonce=code.nonce,
                    auth_time=code.auth_time,
                    expires_at=code.expires_at,
                )
            )
        return value

    async def redeem(self, value: str, now: int) -> Redemption | None:
        """Mark the code used and return it; None for a code never issued.
        Expiry and client binding are the caller's to check."""
        key = code_hash(value)
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(AuthorizationCodeRow)
                .where(
                    AuthorizationCodeRow.code_hash == key,
                    AuthorizationCodeRow.used_at.is_(None),
                )
                .values(used_at=now)
            )
            row = await session.get(AuthorizationCodeRow, key)
            if row is None:
                return None
            if claimed.rowcount == 0 and row.reused_at is None:
                row.reused_at = now
            return Redemption(
                IssuedCode(
                    client_id=row.client_id,
                    user_id=row.user_id,
                    redirect_uri=row.redirect_uri,
                    redirect_uri_given=row.redirect_uri_given,
                    scope=row.scope,
                    code_challenge=row.code_challenge,
                    nonce=row.nonce,
                    auth_time=row.auth_time,
                    expires_at=row.expires_at,
                ),
                reused=claimed.rowcount == 0,
                family_id=row.family_id,
                access_token_jti=row.access_token_jti,
                access_token_expires_at=row.access_token_expires_at,
            )

    async def record_issued(
        self,
        value: str,
        *,
        family_id: str | None,
        access_token_jti: str,
        access_token_expires_at: int,
    ) -> bool:
        """Remember what the redemption issued, for revocation on reuse.
        True when the code was already reused meanwhile: the caller then
        revokes what it has just issued."""
        async with self._sessions.begin() as session:
            row = await session.get(
                AuthorizationCodeRow, code_hash(value), with_for_update=True
            )
            if row is None:
                return False
            row.family_id = family_id
            row.access_token_jti = access_token_jti
            row.access_token_expires_at = access_token_expires_at
            return row.reused_at is not None

    async def purge_expired(self, now: int) -> int:
        """Forget codes past their expiry: a reuse after that finds nothing
        to revoke, and the tokens it issued are short-lived anyway."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(AuthorizationCodeRow).where(
                    AuthorizationCodeRow.expires_at < now - 3600
                )
            )
            return result.rowcount
