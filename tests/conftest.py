from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.private_postgres import PrivatePostgres
from tests.support import RunningServer, running


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for the read-mostly tests; tests give their clients
    unique ids."""
    yield from running(tmp_path_factory.mktemp("tessera"))


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of the test's own, for tests that change global state."""
    yield from running(tmp_path / "tessera")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PostgreSQL server of the test's own, which the test may stop
    and restart; removed afterwards whatever state the test left it in."""
    with PrivatePostgres.create() as database:
        yield database
