from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.users import Account, User
from tessera.store import users as users_module
from tessera.store.changes import versions
from tessera.store.users import UserExists, UserNotFound, UserRecord, UserRepository

ALICE = User("7c9e6679-7425-40de-944b-e07fc1f90ae7", "alice", "Alice A", "a@x.org")
BOB = User("16fd2706-8baf-433b-82eb-8c7fada847da", "bob", None, None, True)
HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
OTHER_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$b3RoZXJvdGhlcm90aGVyIQ"


class Clock:
    """Stands in for the ``time`` module inside ``tessera.store.users``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time(self) -> float:
        return float(self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_000)
    monkeypatch.setattr(users_module, "time", SimpleNamespace(time=clock.time))
    return clock


@pytest.fixture
def repository(sessions: async_sessionmaker[AsyncSession]) -> UserRepository:
    return UserRepository(sessions)


async def test_create_then_read_back_by_id_and_by_username(
    repository: UserRepository, clock: Clock
) -> None:
    await repository.create(ALICE, HASH)
    await repository.create(BOB, OTHER_HASH)

    assert await repository.get(ALICE.user_id) == ALICE
    assert await repository.get(BOB.user_id) == BOB
    assert await repository.get_by_username("alice") == Account(ALICE, HASH)
    assert await repository.get_by_username("bob") == Account(BOB, OTHER_HASH)
    assert await repository.record("alice") == UserRecord(ALICE, 1_000, 1_000)


async def test_usernames_are_stored_and_looked_up_lowercase(
    repository: UserRepository,
) -> None:
    await repository.create(replace(ALICE, username="Alice"), HASH)

    for spelling in ("alice", "ALICE", "aLiCe"):
        account = await repository.get_by_username(spelling)
        assert account is not None and account.user == ALICE
    assert (await repository.record("ALICE")).user == ALICE


async def test_unknown_users_are_none_or_not_found(repository: UserRepository) -> None:
    assert await repository.get(ALICE.user_id) is None
    assert await repository.get_by_username("alice") is None
    with pytest.raises(UserNotFound, match="^alice$"):
        await repository.record("Alice")
    with pytest.raises(UserNotFound):
        await repository.save(ALICE)
    with pytest.raises(UserNotFound):
        await repository.set_password(ALICE.user_id, HASH)


async def test_a_taken_username_is_refused_whatever_its_case(
    repository: UserRepository,
) -> None:
    await repository.create(ALICE, HASH)
    with pytest.raises(UserExists, match="^alice$"):
        await repository.create(replace(BOB, username="ALICE"), OTHER_HASH)
    assert [r.user for r in await repository.list()] == [ALICE]


async def test_list_is_ordered_by_username_without_hashes(
    repository: UserRepository, clock: Clock
) -> None:
    await repository.create(BOB, OTHER_HASH)
    clock.now = 2_000
    await repository.create(ALICE, HASH)

    assert await repository.list() == [
        UserRecord(ALICE, 2_000, 2_000),
        UserRecord(BOB, 1_000, 1_000),
    ]
    assert HASH not in repr(await repository.list())


async def test_save_replaces_the_profile_and_keeps_the_password(
    repository: UserRepository, clock: Clock
) -> None:
    await repository.create(ALICE, HASH)
    clock.now = 1_500
    changed = replace(ALICE, name="Alice B", email=None, disabled=True)

    await repository.save(changed)

    assert await repository.get_by_username("alice") == Account(changed, HASH)
    assert await repository.record("alice") == UserRecord(changed, 1_000, 1_500)


async def test_save_onto_a_taken_username_is_refused(
    repository: UserRepository,
) -> None:
    await repository.create(ALICE, HASH)
    await repository.create(BOB, OTHER_HASH)
    with pytest.raises(UserExists, match="^alice$"):
        await repository.save(replace(BOB, username="Alice"))
    assert await repository.get(BOB.user_id) == BOB


async def test_set_password_replaces_only_the_hash(
    repository: UserRepository, clock: Clock
) -> None:
    await repository.create(ALICE, HASH)
    clock.now = 1_200

    await repository.set_password(ALICE.user_id, OTHER_HASH)

    assert await repository.get_by_username("alice") == Account(ALICE, OTHER_HASH)
    assert (await repository.record("alice")).updated_at == 1_200


async def test_every_write_bumps_the_users_version(
    repository: UserRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    start = (await versions(sessions))["users"]
    await repository.create(ALICE, HASH)
    await repository.save(replace(ALICE, disabled=True))
    await repository.set_password(ALICE.user_id, OTHER_HASH)
    await repository.get_by_username("alice")
    await repository.list()
    assert (await versions(sessions))["users"] == start + 3
    # A refused write bumps nothing.
    with pytest.raises(UserExists):
        await repository.create(ALICE, HASH)
    assert (await versions(sessions))["users"] == start + 3
