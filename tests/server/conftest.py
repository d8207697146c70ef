from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tessera.keys.signing import SigningKey
from tests.support import RunningServer

# Failed checks inside the shared helpers explain themselves too.
pytest.register_assert_rewrite("tests.server.helpers")


@pytest.fixture(scope="session")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    """One HTTP client for the session server: building a client per request
    costs more than the request."""
    with httpx.Client(base_url=server.base_url) as client:
        yield client


@pytest.fixture(scope="session")
def alg_clients(server: RunningServer) -> dict[str, str]:
    """A client id per signing algorithm, made once for the session: each
    algorithm's first key has to wait for the server's change poll."""
    clients: dict[str, str] = {}
    for alg in ("ES256", "RS256", "PS256", "EdDSA"):
        client_id = f"alg-{alg.lower()}-{secrets.token_hex(4)}"
        # ES256 is the server's default: that client names no algorithm.
        server.create_client(client_id, signing_alg=None if alg == "ES256" else alg)
        clients[alg] = client_id
    return clients


@pytest.fixture(scope="session")
def server_key(server: RunningServer) -> SigningKey:
    """The session server's ES256 signing key, to forge tokens with."""
    from tests.server.helpers import load_signing_key

    return load_signing_key(server)
