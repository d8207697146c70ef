"""Drive the real ``tessera`` command in a child process; set up and inspect
its data directory in-process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.core.client_auth import Credentials, authenticate
from tessera.core.clients import Client
from tessera.core.errors import InvalidClient
from tessera.core.secrets import generate_secret, hash_secret
from tessera.keys import master
from tessera.store import database
from tessera.store.clients import ClientRepository
from tessera.store.keys import KeyRepository
from tessera.store.models import SigningKeyRow

WRONG_MASTER_KEY = (
    "Error: the master key does not match the one this database was sealed "
    "with; set TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE to the original key\n"
)


@pytest.fixture(scope="session", autouse=True)
def _no_tessera_environment() -> Iterator[None]:
    """Settings read TESSERA_* variables; the tests set theirs explicitly."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TESSERA_"):
                patch.delenv(name)
        yield


@dataclass
class Tessera:
    data_dir: Path
    audit_log: Path

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run_many({"": list(args)}, env=env)[""]

    def run_many(
        self, commands: dict[str, list[str]], env: dict[str, str] | None = None
    ) -> dict[str, subprocess.CompletedProcess[str]]:
        """Run independent commands side by side: each costs a second or two
        of start-up, mostly imports."""
        full_env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(self.data_dir),
            "TESSERA_AUDIT_LOG": str(self.audit_log),
            **(env or {}),
        }
        processes = {
            name: subprocess.Popen(
                [sys.executable, "-m", "tessera", *args],
                env=full_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, args in commands.items()
        }
        results = {}
        for name, process in processes.items():
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            results[name] = subprocess.CompletedProcess(
                process.args, process.returncode, stdout, stderr
            )
        return results

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, audit_log=str(self.audit_log))

    @property
    def pepper(self) -> bytes:
        key = master.load(None, self.settings.resolved_master_key_file)
        return master.derive(key).secret_pepper

    def add_client(self, client_id: str, **fields: Any) -> str:
        """Register a client straight in the store; return its secret."""
        secret = generate_secret()

        async def go() -> None:
            async with operator(self.settings) as op:
                client = Client(
                    **{
                        "client_id": client_id,
                        "secret_hash": hash_secret(op.pepper, secret),
                        "previous_secret_hash": None,
                        "previous_secret_expires_at": None,
                        "scopes": frozenset({"read"}),
                        "default_scopes": frozenset({"read"}),
                        "audiences": ("https://api.example",),
                        "grant_types": frozenset({"client_credentials"}),
                        "token_ttl": None,
                        "signing_alg": None,
                        "disabled": False,
                        **fields,
                    }
                )
                await op.clients.create(client)

        asyncio.run(go())
        return secret

    def ensure_key(self, alg: str) -> None:
        async def go() -> None:
            async with operator(self.settings) as op:
                await op.keys.ensure({alg})

        asyncio.run(go())

    def client(self, client_id: str) -> Client | None:
        return asyncio.run(
            self._with_store(lambda s: ClientRepository(s).get(client_id))
        )

    def key_rows(self) -> list[SigningKeyRow]:
        return asyncio.run(self._with_store(lambda s: KeyRepository(s).all()))

    def check_secret(self, client_id: str, secret: str, now: float) -> str:
        """``ok``, or why the token endpoint would refuse these credentials."""
        pepper = self.pepper

        async def attempt(sessions: Any) -> str:
            credentials = Credentials(client_id, secret, "client_secret_post")
            try:
                await authenticate(credentials, ClientRepository(sessions), pepper, now)
            except InvalidClient as error:
                return error.detail
            return "ok"

        return asyncio.run(self._with_store(attempt))

    def audit_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_log.read_text().splitlines()]

    async def _with_store(self, use: Any) -> Any:
        engine = database.create_engine(self.settings.resolved_database_url)
        try:
            # Whatever ran first, the schema is there (migrating is idempotent).
            await database.migrate(engine)
            return await use(database.sessions(engine))
        finally:
            await engine.dispose()


def make_tessera(tmp_path_factory: pytest.TempPathFactory, name: str) -> Tessera:
    base = tmp_path_factory.mktemp(name)
    return Tessera(data_dir=base / "data", audit_log=base / "audit.log")
