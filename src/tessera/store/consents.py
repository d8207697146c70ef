"""Consent: the scopes a person has granted a client, remembered so that
the next authorization request for no more than those skips the page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.models import ConsentRow


@dataclass(frozen=True, slots=True)
class Consent:
    client_id: str
    scopes: frozenset[str]
    granted_at: int


class ConsentRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, user_id: str, client_id: str) -> frozenset[str]:
        """The scopes the person has granted the client; empty for none."""
        async with self._sessions() as session:
            row = await session.get(ConsentRow, (user_id, client_id))
            return frozenset(row.scopes.split()) if row else frozenset()

    async def remember(
        self, user_id: str, client_id: str, scopes: frozenset[str], now: int
    ) -> frozenset[str]:
        """Add ``scopes`` to what the person has granted the client, and
        return the union now stored."""
        try:
            return await self._remember(user_id, client_id, scopes, now)
        except IntegrityError:
            # A first grant made concurrently: add to it instead.
            return await self._remember(user_id, client_id, scopes, now)

    async def _remember(
        self, user_id: str, client_id: str, scopes: frozenset[str], now: int
    ) -> frozenset[str]:
        async with self._sessions.begin() as session:
            row = await session.get(
                ConsentRow, (user_id, client_id), with_for_update=True
            )
            if row is None:
                union = scopes
                session.add(
                    ConsentRow(
                        user_id=user_id,
                        client_id=client_id,
                        scopes=" ".join(sorted(union)),
                        granted_at=now,
                    )
                )
            else:
                union = scopes | frozenset(row.scopes.split())
                row.scopes = " ".join(sorted(union))
                row.granted_at = now
            return union

    async def revoke(self, user_id: str, client_id: str) -> bool:
        """Forget the consent; False when there was none. The next request
        from the client shows the consent page again. Tokens already issued
        are the token endpoint's to revoke."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ConsentRow).where(
                    ConsentRow.user_id == user_id, ConsentRow.client_id == client_id
                )
            )
            return bool(result.rowcount)

    async def list_for_user(self, user_id: str) -> list[Consent]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ConsentRow)
                .where(ConsentRow.user_id == user_id)
                .order_by(ConsentRow.client_id)
            )
            return [
                Consent(row.client_id, frozenset(row.scopes.split()), row.granted_at)
                for row in rows
            ]
