from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.clients import Client
from tessera.store import clients as clients_module
from tessera.store.changes import versions
from tessera.store.clients import ClientExists, ClientNotFound, ClientRepository

MINIMAL = Client(
    client_id="minimal",
    secret_hash=b"\x01" * 32,
    previous_secret_hash=None,
    previous_secret_expires_at=None,
    scopes=frozenset(),
    default_scopes=frozenset(),
    audiences=("https://api.example",),
    grant_types=frozenset({"client_credentials"}),
    token_ttl=None,
    signing_alg=None,
    disabled=False,
)
FULL = Client(
    client_id="svc.billing:eu-1",
    secret_hash=b"\x02" * 32,
    previous_secret_hash=b"\x03" * 32,
    previous_secret_expires_at=4_000_000_000,
    scopes=frozenset({"read", "write", "admin"}),
    default_scopes=frozenset({"read"}),
    # Order is kept: without a request the token gets them in this order.
    audiences=("https://z.example", "https://a.example", "urn:m"),
    grant_types=frozenset({"client_credentials", "urn:x:custom"}),
    token_ttl=120,
    signing_alg="EdDSA",
    disabled=True,
)


class Clock:
    """Stands in for the ``time`` module inside ``tessera.store.clients``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time(self) -> float:
        return float(self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_000)
    monkeypatch.setattr(clients_module, "time", SimpleNamespace(time=clock.time))
    return clock


@pytest.fixture
def repository(sessions: async_sessionmaker[AsyncSession]) -> ClientRepository:
    return ClientRepository(sessions)


@pytest.mark.parametrize(
    "client", [pytest.param(MINIMAL, id="minimal"), pytest.param(FULL, id="full")]
)
async def test_create_then_get_returns_the_same_client(
    repository: ClientRepository, client: Client
) -> None:
    await repository.create(client)

    assert await repository.get(client.client_id) == client


async def test_get_of_a_missing_client_is_none(repository: ClientRepository) -> None:
    assert await repository.get("missing") is None


async def test_record_carries_creation_and_update_times(
    repository: ClientRepository, clock: Clock
) -> None:
    await repository.create(FULL)
    clock.now = 2_000
    await repository.save(replace(FULL, token_ttl=60))

    record = await repository.record(FULL.client_id)

    assert record.client == replace(FULL, token_ttl=60)
    assert (record.created_at, record.updated_at) == (1_000, 2_000)


async def test_list_is_ordered_by_client_id(repository: ClientRepository) -> None:
    for client_id in ("b", "c", "a"):
        await repository.create(replace(MINIMAL, client_id=client_id))

    records = await repository.list()

    assert [record.client.client_id for record in records] == ["a", "b", "c"]
    assert records[0].client == replace(MINIMAL, client_id="a")


async def test_list_of_an_empty_store(repository: ClientRepository) -> None:
    assert await repository.list() == []


async def test_save_replaces_every_field(repository: ClientRepository) -> None:
    await repository.create(replace(MINIMAL, client_id=FULL.client_id))

    await repository.save(FULL)

    assert await repository.get(FULL.client_id) == FULL


async def test_delete_removes_the_client(repository: ClientRepository) -> None:
    await repository.create(MINIMAL)
    await repository.create(FULL)

    await repository.delete(MINIMAL.client_id)

    assert await repository.get(MINIMAL.client_id) is None
    assert await repository.get(FULL.client_id) == FULL


async def test_create_of_an_existing_id_fails_and_keeps_the_original(
    repository: ClientRepository,
) -> None:
    await repository.create(FULL)

    with pytest.raises(ClientExists) as raised:
        await repository.create(replace(MINIMAL, client_id=FULL.client_id))

    assert str(raised.value) == FULL.client_id
    assert await repository.get(FULL.client_id) == FULL


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param("save", id="save"),
        pytest.param("delete", id="delete"),
        pytest.param("record", id="record"),
    ],
)
async def test_missing_client_raises_client_not_found(
    repository: ClientRepository, operation: str
) -> None:
    calls = {
        "save": lambda: repository.save(MINIMAL),
        "delete": lambda: repository.delete(MINIMAL.client_id),
        "record": lambda: repository.record(MINIMAL.client_id),
    }

    with pytest.raises(ClientNotFound) as raised:
        await calls[operation]()

    assert str(raised.value) == MINIMAL.client_id
    assert await repository.list() == []


async def test_each_write_bumps_the_clients_version_once(
    repository: ClientRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    seen = [await versions(sessions)]

    await repository.create(MINIMAL)
    seen.append(await versions(sessions))
    await repository.save(replace(MINIMAL, disabled=True))
    seen.append(await versions(sessions))
    await repository.delete(MINIMAL.client_id)
    seen.append(await versions(sessions))

    assert seen == [
        {"clients": n, "keys": 0, "policies": 0, "revocations": 0, "users": 0}
        for n in range(4)
    ]


async def test_reads_and_failed_writes_leave_the_version_alone(
    repository: ClientRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await repository.create(MINIMAL)
    before = await versions(sessions)

    await repository.get(MINIMAL.client_id)
    await repository.record(MINIMAL.client_id)
    await repository.list()
    with pytest.raises(ClientExists):
        await repository.create(MINIMAL)
    with pytest.raises(ClientNotFound):
        await repository.save(FULL)
    with pytest.raises(ClientNotFound):
        await repository.delete(FULL.client_id)

    assert (
        await versions(sessions)
        == before
        == {
            "clients": 1,
            "keys": 0,
            "policies": 0,
            "revocations": 0,
            "users": 0,
        }
    )
