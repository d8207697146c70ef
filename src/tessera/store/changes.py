"""State versions: one counter per artefact kind, bumped with each change.

On PostgreSQL each bump also sends a NOTIFY on ``CHANGES_CHANNEL``. NOTIFY
is transactional: it is delivered when the change commits and never for a
change rolled back, so a listener reloading on it cannot see a change that
did not happen. Polling the versions stays the fallback (see
``tessera.store.notifications``)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.models import StateVersionRow

CHANGES_CHANNEL = "tessera_changes"


async def bump(session: AsyncSession, name: str) -> None:
    # The rows are created by the first migration. The UPDATE also takes the
    # row's write lock, which serialises writers that bump first.
    await session.execute(
        update(StateVersionRow)
        .where(StateVersionRow.name == name)
        .values(version=StateVersionRow.version + 1)
    )
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANGES_CHANNEL, name)))


async def versions(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            select(StateVersionRow.name, StateVersionRow.version)
        )
        return {name: version for name, version in rows}
