"""The private PostgreSQL that fault tests stop and restart: it really stops,
really comes back, and leaves nothing behind."""

from __future__ import annotations

import socket

import asyncpg
import pytest

from tests.private_postgres import PrivatePostgres


async def select_one(url: str) -> int:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return int(await connection.fetchval("SELECT 1"))
    finally:
        await connection.close()


async def test_stop_start_and_destroy(private_postgres: PrivatePostgres) -> None:
    assert await select_one(private_postgres.url) == 1

    private_postgres.stop()
    with pytest.raises(OSError):
        await select_one(private_postgres.url)

    private_postgres.start()
    assert await select_one(private_postgres.url) == 1

    private_postgres.destroy()
    assert not private_postgres.folder.exists()
    # Closed connections may linger in TIME_WAIT on the port; a listener
    # that reuses addresses, as PostgreSQL does, can still have it.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", private_postgres.port))


async def test_immediate_stop_recovers(private_postgres: PrivatePostgres) -> None:
    url = private_postgres.create_database("fault_test")
    connection = await asyncpg.connect(url, timeout=5)
    await connection.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")

    private_postgres.stop("immediate")
    # The server vanished under an open connection, as in a crash.
    with pytest.raises((OSError, asyncpg.PostgresConnectionError)):
        await connection.fetchval("SELECT 1")
    connection.terminate()

    private_postgres.start()
    connection = await asyncpg.connect(url, timeout=5)
    try:
        assert await connection.fetchval("SELECT n FROM kept") == 7
    finally:
        await connection.close()


def test_context_manager_starts_and_destroys() -> None:
    with PrivatePostgres.create() as database:
        assert database.running
        folder = database.folder
    assert not folder.exists()
