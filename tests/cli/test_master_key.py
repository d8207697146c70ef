from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from tessera.cli.context import operator
from tessera.core.client_auth import Credentials, authenticate
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


def test_changing_the_master_key_keeps_keys_and_client_secrets(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tessera = make_tessera(tmp_path_factory, "cli-change-master-key")
    tessera.ensure_key("ES256")
    secret = tessera.add_client("kept")
    kids_before = [row.kid for row in tessera.key_rows()]
    new_key = master.generate()
    new_key_file = tessera.data_dir / "master.key.new"
    new_key_file.write_text(new_key + "\n")

    changed = tessera("keys", "change-master-key", "--new-key-file", str(new_key_file))

    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == (
        "1 keys resealed under the new master key; restart every node with it\n"
    )
    with_new = {"TESSERA_MASTER_KEY": new_key}
    listed = tessera("keys", "list", "--json", env=with_new)
    assert listed.returncode == 0, listed.stderr
    assert [row["kid"] for row in json.loads(listed.stdout)] == kids_before
    # The pepper was carried over: the client's secret still authenticates.
    assert asyncio.run(_authenticates(tessera, new_key, "kept", secret))
    # The old key is now the wrong one.
    old = tessera("clients", "list")
    assert (old.returncode, old.stderr) == (1, WRONG_MASTER_KEY)
    # Changing to the key in use is refused.
    again = tessera(
        "keys", "change-master-key", "--new-key-file", str(new_key_file), env=with_new
    )
    assert (again.returncode, again.stderr) == (
        1,
        "Error: the new master key is the current one\n",
    )
    events = [event["event"] for event in tessera.audit_events()]
    assert events.count("master_key.changed") == 1


async def _authenticates(
    tessera: Tessera, master_key: str, client_id: str, secret: str
) -> bool:
    settings = tessera.settings.model_copy(update={"master_key": SecretStr(master_key)})
    async with operator(settings) as op:
        credentials = Credentials(client_id, secret, "client_secret_post")
        client = await authenticate(credentials, op.clients, op.pepper, time.time())
        return client.client_id == client_id
