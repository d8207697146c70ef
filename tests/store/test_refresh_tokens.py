from __future__ import annotations

import asyncio
import dataclasses
import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.refresh import RefreshTokenRecord, new_refresh_token
from tessera.store.models import RefreshTokenRow
from tessera.store.refresh_tokens import RefreshTokenRepository

NOW = 1_700_000_000
RECORD = RefreshTokenRecord(
    family_id="family-1",
    client_id="app",
    user_id="user-1",
    scope="openid read",
    auth_time=NOW - 60,
    issued_at=NOW,
    expires_at=NOW + 3600,
)


async def test_a_token_is_stored_as_its_hash_and_found_by_its_value(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = RefreshTokenRepository(sessions)
    token = new_refresh_token()

    await repository.add(token, RECORD)

    assert await repository.find(token) == RECORD
    assert await repository.find(new_refresh_token()) is None
    async with sessions() as session:
        stored = list(await session.scalars(select(RefreshTokenRow.token_hash)))
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


async def test_rotation_marks_the_token_and_stores_its_successor(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = RefreshTokenRepository(sessions)
    token, successor = new_refresh_token(), new_refresh_token()
    await repository.add(token, RECORD)

    rotated = await repository.rotate(token, successor, RECORD, NOW + 5)

    assert rotated is True
    found = await repository.find(token)
    assert found is not None and found.rotated_at == NOW + 5
    assert await repository.find(successor) == RECORD
    assert await repository.rotate(token, new_refresh_token(), RECORD, NOW + 6) is (
        False
    )


async def test_of_concurrent_rotations_exactly_one_wins(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = RefreshTokenRepository(sessions)
    token = new_refresh_token()
    await repository.add(token, RECORD)
    successors = [new_refresh_token() for _ in range(10)]

    results = await asyncio.gather(
        *[repository.rotate(token, s, RECORD, NOW) for s in successors]
    )

    assert results.count(True) == 1
    winner = successors[results.index(True)]
    assert await repository.find(winner) == RECORD
    for loser, won in zip(successors, results, strict=True):
        if not won:
            assert await repository.find(loser) is None


async def test_revoking_a_family_reaches_every_token_and_later_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = RefreshTokenRepository(sessions)
    first, second = new_refresh_token(), new_refresh_token()
    other = new_refresh_token()
    await repository.add(first, RECORD)
    await repository.rotate(first, second, RECORD, NOW)
    await repository.add(other, dataclasses.replace(RECORD, family_id="family-2"))

    assert await repository.revoke_family("family-1", NOW + 1) == 2
    assert await repository.revoke_family("family-1", NOW + 2) == 0

    for token in (first, second):
        found = await repository.find(token)
        assert found is not None and found.revoked_at == NOW + 1
    unrelated = await repository.find(other)
    assert unrelated is not None and unrelated.revoked_at is None
    # A token that joins the family afterwards is read as revoked too.
    late = new_refresh_token()
    await repository.add(late, RECORD)
    found = await repository.find(late)
    assert found is not None and found.revoked_at == NOW + 1
    # And a revoked token cannot rotate.
    assert await repository.rotate(second, new_refresh_token(), RECORD, NOW) is False


async def test_expired_tokens_are_purged_a_day_late(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = RefreshTokenRepository(sessions)
    token = new_refresh_token()
    await repository.add(token, RECORD)

    assert await repository.purge_expired(RECORD.expires_at + 86400) == 0
    assert await repository.purge_expired(RECORD.expires_at + 86401) == 1
    assert await repository.find(token) is None
