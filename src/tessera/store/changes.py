"""State versions: one counter per artefact kind, bumped with each change."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.models import StateVersionRow


async def bump(session: AsyncSession, name: str) -> None:
    # The rows are created by the first migration.
    await session.execute(
        update(StateVersionRow)
        .where(StateVersionRow.name == name)
        .values(version=StateVersionRow.version + 1)
    )


async def versions(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            select(StateVersionRow.name, StateVersionRow.version)
        )
        return {name: version for name, version in rows}
