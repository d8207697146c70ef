from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass

import pytest

from tessera.keys import master
from tests.cli.conftest import WRONG_MASTER_KEY, Tessera, make_tessera


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    tessera = make_tessera(tmp_path_factory, "cli-master-key")
    tessera.ensure_key("ES256")
    return tessera


@dataclass
class Attempts:
    results: dict[str, subprocess.CompletedProcess[str]]
    kids_before: list[str]
    key_file_before: bytes


@pytest.fixture(scope="module")
def attempts(tessera: Tessera) -> Attempts:
    """Both commands, side by side, with another master key."""
    key_file_before = (tessera.data_dir / "master.key").read_bytes()
    kids_before = [row.kid for row in tessera.key_rows()]
    results = tessera.run_many(
        {"clients list": ["clients", "list"], "serve": ["serve"]},
        env={
            "TESSERA_MASTER_KEY": master.generate(),
            "TESSERA_PORT": str(_free_port()),
        },
    )
    return Attempts(results, kids_before, key_file_before)


@pytest.mark.parametrize("command", ["clients list", "serve"])
def test_a_wrong_master_key_stops_the_command(
    tessera: Tessera, attempts: Attempts, command: str
) -> None:
    result = attempts.results[command]

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == WRONG_MASTER_KEY


def test_a_wrong_master_key_changes_nothing(
    tessera: Tessera, attempts: Attempts
) -> None:
    assert [row.kid for row in tessera.key_rows()] == attempts.kids_before
    assert (tessera.data_dir / "master.key").read_bytes() == attempts.key_file_before
