"""Revoked-token repository: a revoked JWT's ``jti`` is kept until the
token would have expired anyway."""

from __future__ import annotations

import contextlib

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.changes import bump
from tessera.store.models import RevokedTokenRow


class RevocationRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def revoke(self, jti: str, client_id: str, expires_at: int, now: int) -> None:
        # Revoked concurrently by another request: the same outcome.
        with contextlib.suppress(IntegrityError):
            await self._insert(jti, client_id, expires_at, now)

    async def _insert(
        self, jti: str, client_id: str, expires_at: int, now: int
    ) -> None:
        async with self._sessions.begin() as session:
            if await session.get(RevokedTokenRow, jti) is None:
                session.add(
                    RevokedTokenRow(
                        jti=jti,
                        client_id=client_id,
                        expires_at=expires_at,
                        revoked_at=now,
                    )
                )
                await bump(session, "revocations")

    async def is_revoked(self, jti: str) -> bool:
        async with self._sessions() as session:
            return await session.get(RevokedTokenRow, jti) is not None

    async def purge_expired(self, now: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < now)
            )
            return result.rowcount
