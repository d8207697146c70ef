"""Several real ``tessera serve`` processes on one PostgreSQL database.

Each test gets a database of its own on the shared server (127.0.0.1:5432),
dropped at the end. Nodes share the database, the master key and the issuer
URL, as nodes behind one load balancer do; each listens on its own loopback
port. The fallback poll is slowed to 30 s so that anything reaching a node
within a second got there by notification, not by polling."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from tessera.keys import master
from tests.support import RunningServer, start_server

SHARED_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
ISSUER = "https://tessera.cluster.test"


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def cluster_database() -> Iterator[str]:
    name = f"tessera_cluster_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f"{SHARED_POSTGRES}/test", f'CREATE DATABASE "{name}"'))
    except OSError as error:
        pytest.skip(f"PostgreSQL at {SHARED_POSTGRES} is unreachable: {error}")
    yield f"{SHARED_POSTGRES}/{name}"
    asyncio.run(
        _admin(f"{SHARED_POSTGRES}/test", f'DROP DATABASE "{name}" WITH (FORCE)')
    )


@dataclass
class Cluster:
    """Nodes sharing one store; ``start`` adds nodes, all stopped at the end."""

    root: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[RunningServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {
            "TESSERA_DATABASE_URL": self.database_url,
            "TESSERA_MASTER_KEY": master.generate(),
            "TESSERA_ISSUER": ISSUER,
            "TESSERA_CHANGE_POLL_INTERVAL": "30",
            **self.env,
        }

    def start(self, count: int = 1, **env: str) -> list[RunningServer]:
        """Start ``count`` nodes at the same moment; return them once all
        answer."""
        first = len(self.nodes)
        with ThreadPoolExecutor(count) as pool:
            started = list(
                pool.map(
                    lambda index: start_server(
                        self.root / f"node{index}", **{**self.env, **env}
                    ),
                    range(first, first + count),
                )
            )
        self.nodes += started
        return started

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def cluster(tmp_path: Path, cluster_database: str) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, cluster_database)
    try:
        yield cluster
    finally:
        cluster.stop()
