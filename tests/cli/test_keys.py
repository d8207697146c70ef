from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tessera.config import Settings
from tests.cli.conftest import Tessera, make_tessera

# The defaults the child process runs with.
PUBLISH_AHEAD = Settings.model_fields["key_publish_ahead"].default
MAX_TOKEN_TTL = Settings.model_fields["max_token_ttl"].default


@pytest.fixture
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    tessera = make_tessera(tmp_path_factory, "cli-keys")
    tessera.ensure_key("ES256")
    return tessera


def test_rotate_publishes_a_key_that_signs_later(tessera: Tessera) -> None:
    (old,) = tessera.key_rows()
    before = int(time.time())

    rotated = tessera("keys", "rotate")
    listed = tessera("keys", "list", "--json")

    after = int(time.time())
    assert rotated.returncode == 0, rotated.stderr
    rows = {row.kid: row for row in tessera.key_rows()}
    (new,) = set(rows) - {old.kid}
    assert rotated.stdout == f"new key {new} published\n"
    activates_at = rows[new].activates_at
    assert before + PUBLISH_AHEAD <= activates_at <= after + PUBLISH_AHEAD
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {
            "kid": old.kid,
            "alg": "ES256",
            "state": "signing",
            "activates_at": old.activates_at,
            "retires_at": activates_at + MAX_TOKEN_TTL,
        },
        {
            "kid": new,
            "alg": "ES256",
            "state": "pending",
            "activates_at": activates_at,
            "retires_at": None,
        },
    ]


def test_list_prints_one_line_per_key(tessera: Tessera) -> None:
    (key,) = tessera.key_rows()

    result = tessera("keys", "list")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{key.kid}\tES256\tsigning\n"


def test_generate_master_key_prints_a_usable_key(tmp_path: Path) -> None:
    from tessera.keys.master import MASTER_KEY_BYTES, decode

    result = subprocess.run(
        [sys.executable, "-m", "tessera", "keys", "generate-master-key"],
        env={"PATH": "/usr/bin:/bin", "TESSERA_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert len(decode(result.stdout)) == MASTER_KEY_BYTES
    assert result.stdout.count("\n") == 1
    # Nothing is written: the key exists only in what was printed.
    assert list(tmp_path.iterdir()) == []
