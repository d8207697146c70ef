"""Refresh tokens, stored as their SHA-256 (see tessera.core.refresh).

Rotation is one conditional UPDATE (``rotated_at IS NULL AND revoked_at IS
NULL``) in the same transaction as the successor's INSERT: every backend
lets exactly one of two concurrent UPDATEs of a row match, so exactly one
rotation stores a successor. Revoking a family marks all of its rows; a
token is read as revoked when any row of its family is, which also covers
a successor inserted while its family was being revoked."""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from tessera.core.refresh import RefreshTokenRecord
from tessera.store.models import RefreshTokenRow


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _row(token: str, record: RefreshTokenRecord) -> RefreshTokenRow:
    return RefreshTokenRow(
        token_hash=token_hash(token),
        family_id=record.family_id,
        client_id=record.client_id,
        user_id=record.user_id,
        scope=record.scope,
        auth_time=record.auth_time,
        issued_at=record.issued_at,
        expires_at=record.expires_at,
    )


_family = aliased(RefreshTokenRow)
# When the token's family was first revoked, if it was: one indexed lookup.
_FAMILY_REVOKED_AT = (
    select(func.min(_family.revoked_at))
    .where(_family.family_id == RefreshTokenRow.family_id)
    .scalar_subquery()
)


class RefreshTokenRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, token: str, record: RefreshTokenRecord) -> None:
        async with self._sessions.begin() as session:
            session.add(_row(token, record))

    async def find(self, token: str) -> RefreshTokenRecord | None:
        async with self._sessions() as session:
            result = await session.execute(
                select(RefreshTokenRow, _FAMILY_REVOKED_AT).where(
                    RefreshTokenRow.token_hash == token_hash(token)
                )
            )
            found = result.first()
        if found is None:
            return None
        row, family_revoked_at = found
        return RefreshTokenRecord(
            family_id=row.family_id,
            client_id=row.client_id,
            user_id=row.user_id,
            scope=row.scope,
            auth_time=row.auth_time,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            rotated_at=row.rotated_at,
            revoked_at=family_revoked_at,
        )

    async def rotate(
        self, token: str, successor: str, record: RefreshTokenRecord, now: int
    ) -> bool:
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(RefreshTokenRow)
                .where(
                    RefreshTokenRow.token_hash == token_hash(token),
                    RefreshTokenRow.rotated_at.is_(None),
                    RefreshTokenRow.revoked_at.is_(None),
                )
                .values(rotated_at=now)
            )
            if claimed.rowcount != 1:
                return False
            session.add(_row(successor, record))
        return True

    async def revoke_family(self, family_id: str, now: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RefreshTokenRow)
                .where(
                    RefreshTokenRow.family_id == family_id,
                    RefreshTokenRow.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            return result.rowcount

    async def purge_expired(self, now: int) -> int:
        """Forget tokens a day past their expiry: presented then, they are
        unknown, which is refused the same as expired."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(RefreshTokenRow).where(RefreshTokenRow.expires_at < now - 86400)
            )
            return result.rowcount
