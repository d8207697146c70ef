"""Signing-key repository, and the master-key check value."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.changes import bump
from tessera.store.models import MetaRow, SigningKeyRow

MASTER_KEY_CHECK = "master_key_check"
PEPPER_ROW = "pepper"


class KeyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def all(self) -> list[SigningKeyRow]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(SigningKeyRow).order_by(SigningKeyRow.activates_at)
            )
            return list(rows)

    async def add(
        self,
        row: SigningKeyRow,
        still_needed: Callable[[list[SigningKeyRow]], bool] = lambda rows: True,
    ) -> bool:
        """Add the key unless ``still_needed``, shown every key as it stands
        once this writer holds the lock, says another process already did the
        same. Two nodes racing to rotate thus add exactly one key."""
        try:
            async with self._sessions.begin() as session:
                # Bumping first takes the write lock (a row lock on
                # PostgreSQL, the database lock on SQLite) before the read.
                await bump(session, "keys")
                rows = list(await session.scalars(select(SigningKeyRow)))
                if not still_needed(rows):
                    raise _NotNeeded
                session.add(row)
        except _NotNeeded:
            return False
        return True

    async def delete(self, kids: list[str]) -> None:
        if not kids:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                delete(SigningKeyRow).where(SigningKeyRow.kid.in_(kids))
            )
            await bump(session, "keys")

    async def master_key_check(self) -> bytes | None:
        return await self.meta(MASTER_KEY_CHECK)

    async def meta(self, name: str) -> bytes | None:
        async with self._sessions() as session:
            row = await session.get(MetaRow, name)
            return row.value if row else None

    async def reseal(
        self,
        reseal: Callable[[SigningKeyRow], bytes],
        meta: dict[str, bytes],
    ) -> int:
        """Replace every key's sealed value with ``reseal(row)`` and set the
        ``meta`` values, in one transaction: a master-key change happens
        whole or not at all. Returns how many keys were resealed."""
        async with self._sessions.begin() as session:
            await bump(session, "keys")
            rows = list(await session.scalars(select(SigningKeyRow)))
            for row in rows:
                row.sealed_private_key = reseal(row)
            for name, value in meta.items():
                await session.merge(MetaRow(name=name, value=value))
            return len(rows)

    async def set_master_key_check(self, value: bytes) -> None:
        """Store the check value unless one is there; a node starting at the
        same moment may win, and then its value is the one that counts."""
        try:
            async with self._sessions.begin() as session:
                if await session.get(MetaRow, MASTER_KEY_CHECK) is None:
                    session.add(MetaRow(name=MASTER_KEY_CHECK, value=value))
        except IntegrityError:
            pass


class _NotNeeded(Exception):
    """Rolls back an ``add`` that another process made unnecessary."""
