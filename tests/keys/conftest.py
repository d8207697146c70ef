from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tessera.keys import master
from tessera.keys.manager import KeyManager
from tessera.store import database
from tessera.store.keys import KeyRepository

T0 = 1_700_000_000
MAX_TOKEN_TTL = 3600
PUBLISH_AHEAD = 600
ROTATION_INTERVAL = 86400
KEY_ENCRYPTION_KEY = master.derive(bytes(range(32))).key_encryption


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


@pytest.fixture(autouse=True)
def _no_tessera_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read TESSERA_* variables; the tests pass theirs explicitly."""
    for name in list(os.environ):
        if name.startswith("TESSERA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()


@pytest.fixture
async def key_repository(tmp_path: Path) -> AsyncIterator[KeyRepository]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    await database.migrate(engine)
    yield KeyRepository(database.sessions(engine))
    await engine.dispose()


@pytest.fixture
def manager(
    key_repository: KeyRepository, clock: FakeClock, audit: RecordingAudit
) -> KeyManager:
    return KeyManager(
        key_repository,
        KEY_ENCRYPTION_KEY,
        max_token_ttl=MAX_TOKEN_TTL,
        publish_ahead=PUBLISH_AHEAD,
        rotation_interval=ROTATION_INTERVAL,
        audit=audit,
        clock=clock,
    )
