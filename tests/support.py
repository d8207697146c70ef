"""Test support: a real ``tessera serve`` process on a loopback port, and
in-process access to its store for setting up clients."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.core.clients import Client
from tessera.core.secrets import generate_secret, hash_secret


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A ``tessera serve`` child process and the settings it runs with."""

    base_url: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        """What an operator command needs to reach this server's store."""
        return Settings(
            data_dir=self.data_dir,
            issuer=self.env["TESSERA_ISSUER"],
            database_url=self.env.get("TESSERA_DATABASE_URL", ""),
            master_key=self.env.get("TESSERA_MASTER_KEY"),
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def create_client(
        self,
        client_id: str,
        *,
        scopes: str = "read write",
        audiences: tuple[str, ...] = ("https://api.example.test",),
        default_scopes: str | None = None,
        token_ttl: int | None = None,
        signing_alg: str | None = None,
        grant_types: frozenset[str] = frozenset({"client_credentials"}),
        disabled: bool = False,
        may_introspect: bool = False,
        secret: str | None = None,
    ) -> str:
        """Register a client straight in the server's store; return its secret
        (a generated one unless ``secret`` is given)."""
        if secret is None:
            secret = generate_secret()

        async def go() -> None:
            async with operator(self.settings) as op:
                if signing_alg:
                    await op.keys.ensure({signing_alg})
                await op.clients.create(
                    Client(
                        client_id=client_id,
                        secret_hash=hash_secret(op.pepper, secret),
                        previous_secret_hash=None,
                        previous_secret_expires_at=None,
                        scopes=frozenset(scopes.split()),
                        default_scopes=frozenset(
                            (
                                scopes if default_scopes is None else default_scopes
                            ).split()
                        ),
                        audiences=audiences,
                        grant_types=grant_types,
                        token_ttl=token_ttl,
                        signing_alg=signing_alg,
                        disabled=disabled,
                        may_introspect=may_introspect,
                    )
                )

        asyncio.run(go())
        self.secrets[client_id] = secret
        self.wait_until_known(client_id, secret, disabled=disabled)
        if signing_alg:
            # The key is loaded by the same refresh, just after the clients.
            time.sleep(0.5)
        return secret

    def create_key_client(
        self,
        client_id: str,
        *,
        jwks: dict[str, Any] | None = None,
        jwks_uri: str | None = None,
        scopes: str = "read write",
        audiences: tuple[str, ...] = ("https://api.example.test",),
        may_introspect: bool = False,
    ) -> str:
        """Register a private_key_jwt client straight in the server's store,
        with its public keys inline (``jwks``, a JWK Set) or at ``jwks_uri``,
        and wait for the server to load it.

        Such a client cannot authenticate without signing, so the wait is for
        a secret client registered after it, whose id is returned: a node
        loads every client at once, so when it knows that one, it knows this
        one too."""

        async def go() -> None:
            async with operator(self.settings) as op:
                await op.register_key_client(
                    client_id,
                    jwks=None if jwks is None else json.dumps(jwks),
                    jwks_uri=jwks_uri,
                    scopes=frozenset(scopes.split()),
                    audiences=audiences,
                    may_introspect=may_introspect,
                )

        asyncio.run(go())
        marker = client_id + ".loaded"
        self.create_client(marker)
        return marker

    def create_web_client(
        self,
        client_id: str,
        *,
        redirect_uris: tuple[str, ...],
        post_logout_redirect_uris: tuple[str, ...] = (),
        scopes: str = "openid profile email read",
        grant_types: frozenset[str] = frozenset({"authorization_code"}),
        public: bool = False,
    ) -> str | None:
        """Register a client of the authorization code flow straight in the
        store and wait for the server to load it; return its secret, or
        None for a public client (auth_method "none"), which has none."""
        secret = generate_secret()

        async def go() -> None:
            async with operator(self.settings) as op:
                client = Client.register(
                    client_id,
                    hash_secret(op.pepper, secret),
                    scopes=frozenset(scopes.split()),
                    audiences=("https://api.example.test",),
                    grant_types=grant_types,
                )
                await op.clients.create(
                    dataclasses.replace(
                        client,
                        redirect_uris=redirect_uris,
                        post_logout_redirect_uris=post_logout_redirect_uris,
                        auth_method="none" if public else "client_secret",
                    )
                )

        asyncio.run(go())
        # A node loads every client at once: when it knows a secret client
        # registered after this one, it knows this one too.
        self.create_client(client_id + ".loaded")
        if public:
            return None
        self.secrets[client_id] = secret
        return secret

    def create_user(self, username: str, password: str, **fields: Any) -> str:
        """Create a person who can sign in; return their user id."""
        from tessera.core.users import Passwords, new_user

        user = new_user(username, **fields)

        async def go() -> None:
            password_hash = await Passwords().hash(password)
            async with operator(self.settings) as op:
                await op.users.create(user, password_hash)

        asyncio.run(go())
        return user.user_id

    def browser(self) -> httpx.Client:
        """An HTTP client that keeps cookies like a browser and shows each
        redirect instead of following it."""
        return httpx.Client(base_url=self.base_url, follow_redirects=False)

    def wait_until_known(self, client_id: str, secret: str, *, disabled: bool) -> None:
        """Wait for the server's change poll to load the new client: until it
        authenticates at introspection, or, for a disabled client (which
        never authenticates), for two poll intervals."""
        interval = float(self.env["TESSERA_CHANGE_POLL_INTERVAL"])
        if disabled:
            time.sleep(2 * interval + 0.1)
            return
        deadline = time.monotonic() + 10
        form = {"client_id": client_id, "client_secret": secret, "token": "-"}
        while time.monotonic() < deadline:
            response = httpx.post(self.url("/oauth2/introspect"), data=form)
            if response.status_code == 200:
                return
            time.sleep(interval / 4)
        raise RuntimeError(f"the server never loaded client {client_id!r}")

    def audit_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(data_dir: Path, **env_overrides: str) -> RunningServer:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TESSERA_DATA_DIR": str(data_dir),
        "TESSERA_PORT": str(port),
        "TESSERA_ISSUER": base_url,
        "TESSERA_CHANGE_POLL_INTERVAL": "0.05",
        **env_overrides,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tessera", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(base_url, data_dir, env, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()}")
        try:
            if httpx.get(server.url("/healthz"), timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")


def token_request(server: RunningServer, client_id: str, **form: Any) -> httpx.Response:
    """A client_secret_basic token request with the client's real secret."""
    data = {"grant_type": "client_credentials", **form}
    return httpx.post(
        server.url("/oauth2/token"),
        data=data,
        auth=(client_id, server.secrets[client_id]),
    )


def running(data_dir: Path, **env: str) -> Iterator[RunningServer]:
    server = start_server(data_dir, **env)
    try:
        yield server
    finally:
        server.stop()


def within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long until ``condition`` held; fails the test after ``seconds``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.02)
    return time.monotonic() - start
