"""Signing-key repository, and the master-key check value."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.changes import bump
from tessera.store.models import MetaRow, SigningKeyRow

MASTER_KEY_CHECK = "master_key_check"


class KeyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def all(self) -> list[SigningKeyRow]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(SigningKeyRow).order_by(SigningKeyRow.activates_at)
            )
            return list(rows)

    async def add(self, row: SigningKeyRow) -> None:
        async with self._sessions.begin() as session:
            session.add(row)
            await bump(session, "keys")

    async def delete(self, kids: list[str]) -> None:
        if not kids:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                delete(SigningKeyRow).where(SigningKeyRow.kid.in_(kids))
            )
            await bump(session, "keys")

    async def master_key_check(self) -> bytes | None:
        async with self._sessions() as session:
            row = await session.get(MetaRow, MASTER_KEY_CHECK)
            return row.value if row else None

    async def set_master_key_check(self, value: bytes) -> None:
        async with self._sessions.begin() as session:
            if await session.get(MetaRow, MASTER_KEY_CHECK) is None:
                session.add(MetaRow(name=MASTER_KEY_CHECK, value=value))
