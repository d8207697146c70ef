from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.changes import versions
from tessera.store.models import RevokedTokenRow
from tessera.store.revocations import RevocationRepository


@pytest.fixture
def repository(sessions: async_sessionmaker[AsyncSession]) -> RevocationRepository:
    return RevocationRepository(sessions)


async def _rows(
    sessions: async_sessionmaker[AsyncSession],
) -> list[tuple[str, str, int, int]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(RevokedTokenRow).order_by(RevokedTokenRow.jti)
        )
        return [(r.jti, r.client_id, r.expires_at, r.revoked_at) for r in rows]


async def test_revoked_jti_is_revoked_and_others_are_not(
    repository: RevocationRepository,
) -> None:
    await repository.revoke("jti-1", "app", expires_at=200, now=100)

    assert await repository.is_revoked("jti-1") is True
    assert await repository.is_revoked("jti-2") is False


async def test_revoke_is_idempotent_and_keeps_the_first_record(
    repository: RevocationRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await repository.revoke("jti-1", "app", expires_at=200, now=100)
    await repository.revoke("jti-1", "other", expires_at=900, now=150)

    assert await _rows(sessions) == [("jti-1", "app", 200, 100)]
    assert (await versions(sessions))["revocations"] == 1


async def test_each_new_revocation_bumps_the_version(
    repository: RevocationRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await repository.revoke("jti-1", "app", expires_at=200, now=100)
    await repository.revoke("jti-2", "app", expires_at=200, now=100)

    assert await versions(sessions) == {
        "clients": 0,
        "keys": 0,
        "policies": 0,
        "revocations": 2,
        "users": 0,
    }


@pytest.mark.parametrize(
    ("now", "purged", "kept"),
    [
        pytest.param(99, 0, ["exp-100", "exp-101", "exp-99"], id="none expired"),
        pytest.param(100, 1, ["exp-100", "exp-101"], id="strictly before now"),
        pytest.param(102, 3, [], id="all expired"),
    ],
)
async def test_purge_expired_deletes_rows_that_expired_before_now(
    repository: RevocationRepository,
    sessions: async_sessionmaker[AsyncSession],
    now: int,
    purged: int,
    kept: list[str],
) -> None:
    for expires_at in (99, 100, 101):
        await repository.revoke(f"exp-{expires_at}", "app", expires_at, now=50)

    assert await repository.purge_expired(now) == purged
    assert [jti for jti, *_ in await _rows(sessions)] == kept
