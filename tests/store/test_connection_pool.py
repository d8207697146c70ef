"""PostgreSQL connections that died while idle in the pool: pinged and
replaced unseen after PING_AFTER_IDLE, never pinged while in steady use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tessera.store import database


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = database.create_engine(postgres_url)
    yield engine
    await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        )


async def terminate(postgres_url: str, pid: int) -> None:
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.1)


async def test_an_idle_connection_that_died_is_replaced_unseen(
    engine: AsyncEngine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE", 0.2)
    dead = await backend_pid(engine)
    await terminate(postgres_url, dead)
    await asyncio.sleep(0.3)

    replaced = await backend_pid(engine)

    assert replaced != dead


async def test_a_busy_connection_is_not_pinged_and_its_death_fails_one_request(
    engine: AsyncEngine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The price of not pinging: one failed request (a 503 at the HTTP
    layer), after which the pool holds only new connections."""
    monkeypatch.setattr(database, "PING_AFTER_IDLE", 60.0)
    dead = await backend_pid(engine)
    await terminate(postgres_url, dead)

    with pytest.raises(DBAPIError) as failure:
        await backend_pid(engine)
    assert failure.value.connection_invalidated

    assert await backend_pid(engine) != dead
