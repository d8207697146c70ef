from __future__ import annotations

from pathlib import Path

import pytest

from tessera.config import Settings
from tessera.keys import master
from tessera.keys.master import MasterKeyError
from tessera.server.runtime import start
from tessera.store import database
from tessera.store.keys import KeyRepository


async def _key_rows(data_dir: Path) -> list[tuple[str, str]]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{data_dir / 'tessera.db'}")
    try:
        rows = await KeyRepository(database.sessions(engine)).all()
    finally:
        await engine.dispose()
    return [(row.kid, row.alg) for row in rows]


async def test_start_with_another_master_key_fails_and_adds_no_key(
    tmp_path: Path,
) -> None:
    audit_log = str(tmp_path / "audit.log")
    runtime = await start(Settings(data_dir=tmp_path, audit_log=audit_log))
    await runtime.close()
    rows_before = await _key_rows(tmp_path)
    # Another default algorithm: a start-up that made keys before checking
    # the master key would add an EdDSA key here.
    wrong = Settings(
        data_dir=tmp_path,
        audit_log=audit_log,
        master_key=master.generate(),
        default_signing_alg="EdDSA",
    )

    with pytest.raises(MasterKeyError) as raised:
        await start(wrong)

    assert str(raised.value).startswith(
        "the master key does not match the one this database was sealed with"
    )
    # The default algorithm's key, and the RS256 one ID tokens need.
    assert sorted(alg for _, alg in rows_before) == ["ES256", "RS256"]
    assert await _key_rows(tmp_path) == rows_before


async def test_start_again_with_the_same_master_key_keeps_the_keys(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, audit_log=str(tmp_path / "audit.log"))
    first = await start(settings)
    await first.close()
    rows = await _key_rows(tmp_path)

    second = await start(settings)
    await second.close()

    assert await _key_rows(tmp_path) == rows
