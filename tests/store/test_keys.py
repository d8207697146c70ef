from __future__ import annotations

import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.changes import versions
from tessera.store.keys import KeyRepository
from tessera.store.models import SigningKeyRow


def _row(kid: str, activates_at: int) -> SigningKeyRow:
    return SigningKeyRow(
        kid=kid,
        alg="ES256",
        sealed_private_key=b"\x01sealed\x00" + kid.encode(),
        public_jwk=json.dumps({"kid": kid}),
        created_at=activates_at - 10,
        activates_at=activates_at,
    )


def _fields(row: SigningKeyRow) -> tuple[object, ...]:
    return (
        row.kid,
        row.alg,
        row.sealed_private_key,
        row.public_jwk,
        row.created_at,
        row.activates_at,
    )


@pytest.fixture
def repository(sessions: async_sessionmaker[AsyncSession]) -> KeyRepository:
    return KeyRepository(sessions)


async def test_all_returns_every_field_ordered_by_activation(
    repository: KeyRepository,
) -> None:
    for kid, activates_at in (("c", 300), ("a", 100), ("b", 200)):
        await repository.add(_row(kid, activates_at))

    rows = await repository.all()

    assert [_fields(row) for row in rows] == [
        _fields(_row("a", 100)),
        _fields(_row("b", 200)),
        _fields(_row("c", 300)),
    ]


async def test_delete_removes_only_the_given_kids(repository: KeyRepository) -> None:
    for kid, activates_at in (("a", 100), ("b", 200), ("c", 300)):
        await repository.add(_row(kid, activates_at))

    await repository.delete(["a", "c"])

    assert [row.kid for row in await repository.all()] == ["b"]


async def test_add_and_delete_bump_the_keys_version(
    repository: KeyRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await repository.add(_row("a", 100))
    await repository.add(_row("b", 200))
    await repository.delete(["a"])
    await repository.delete([])

    assert await versions(sessions) == {
        "clients": 0,
        "keys": 3,
        "policies": 0,
        "revocations": 0,
        "users": 0,
    }


async def test_master_key_check_is_written_once(
    repository: KeyRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await repository.master_key_check() is None

    await repository.set_master_key_check(b"first")
    await repository.set_master_key_check(b"second")

    assert await repository.master_key_check() == b"first"
    assert await versions(sessions) == {
        "clients": 0,
        "keys": 0,
        "policies": 0,
        "revocations": 0,
        "users": 0,
    }
