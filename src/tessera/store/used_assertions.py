"""Used client assertions, kept in the database until they expire, so that
an assertion is accepted once across every node that shares the database.

The primary key does the work: of two nodes inserting the same key at the
same moment, one gets an IntegrityError, which is the replay."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.models import UsedAssertionRow


class UsedAssertionRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def first_use(self, key: str, expires_at: int, now: int) -> bool:
        try:
            async with self._sessions.begin() as session:
                # A record the purge has not reached yet belongs to an
                # assertion that can no longer be accepted: its jti is free.
                await session.execute(
                    delete(UsedAssertionRow).where(
                        UsedAssertionRow.key == key, UsedAssertionRow.expires_at <= now
                    )
                )
                await session.execute(
                    insert(UsedAssertionRow).values(key=key, expires_at=expires_at)
                )
        except IntegrityError:
            return False
        return True

    async def purge_expired(self, now: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(UsedAssertionRow).where(UsedAssertionRow.expires_at <= now)
            )
            return result.rowcount

    async def close(self) -> None:
        """Nothing to release: the sessions belong to the node."""
