"""User repository.

Usernames are stored lowercase and looked up lowercase, so that ``Alice``
and ``alice`` are one account whatever the database's collation; callers
normally pass them through ``tessera.core.users.check_username`` first.
Password hashes are argon2id PHC strings; none is ever returned but by
``get_by_username``, which the login check needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.users import Account, User
from tessera.store.changes import bump
from tessera.store.models import UserRow


class UserExists(Exception):
    pass


class UserNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What an operator sees of a user: everything but the password hash."""

    user: User
    created_at: int
    updated_at: int


def to_user(row: UserRow) -> User:
    return User(
        user_id=row.user_id,
        username=row.username,
        name=row.name,
        email=row.email,
        disabled=row.disabled,
    )


class UserRepository:
    """Every write bumps the ``users`` state version in the same
    transaction, so that other processes can tell their copy is stale."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, user_id: str) -> User | None:
        async with self._sessions() as session:
            row = await session.get(UserRow, user_id)
            return to_user(row) if row else None

    async def get_by_username(self, username: str) -> Account | None:
        async with self._sessions() as session:
            row = await session.scalar(_by_username(username))
            return Account(to_user(row), row.password_hash) if row else None

    async def record(self, username: str) -> UserRecord:
        """The user named ``username``; raises UserNotFound."""
        async with self._sessions() as session:
            row = await session.scalar(_by_username(username))
            if row is None:
                raise UserNotFound(username.lower())
            return UserRecord(to_user(row), row.created_at, row.updated_at)

    async def list(self) -> list[UserRecord]:
        async with self._sessions() as session:
            rows = await session.scalars(select(UserRow).order_by(UserRow.username))
            return [UserRecord(to_user(r), r.created_at, r.updated_at) for r in rows]

    async def create(self, user: User, password_hash: str) -> None:
        """Store a new user; raises UserExists if the username is taken."""
        username = user.username.lower()
        now = int(time.time())
        try:
            async with self._sessions.begin() as session:
                if await session.scalar(_by_username(username)) is not None:
                    raise UserExists(username)
                session.add(
                    UserRow(
                        user_id=user.user_id,
                        username=username,
                        password_hash=password_hash,
                        name=user.name,
                        email=user.email,
                        disabled=user.disabled,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await bump(session, "users")
        except IntegrityError:
            # Created concurrently between the check and the insert.
            raise UserExists(username) from None

    async def save(self, user: User) -> None:
        """Store the user's username, name, email and disabled flag; raises
        UserNotFound, or UserExists if the new username is taken."""
        try:
            async with self._sessions.begin() as session:
                row = await self._locked(session, user.user_id)
                row.username = user.username.lower()
                row.name = user.name
                row.email = user.email
                row.disabled = user.disabled
                row.updated_at = int(time.time())
                await bump(session, "users")
        except IntegrityError:
            raise UserExists(user.username.lower()) from None

    async def set_password(self, user_id: str, password_hash: str) -> None:
        """Replace the user's password hash; raises UserNotFound."""
        async with self._sessions.begin() as session:
            row = await self._locked(session, user_id)
            row.password_hash = password_hash
            row.updated_at = int(time.time())
            await bump(session, "users")

    async def _locked(self, session: AsyncSession, user_id: str) -> UserRow:
        row = await session.get(UserRow, user_id, with_for_update=True)
        if row is None:
            raise UserNotFound(user_id)
        return row


def _by_username(username: str) -> Select[tuple[UserRow]]:
    return select(UserRow).where(UserRow.username == username.lower())
