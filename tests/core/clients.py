"""Clients for the core tests, and a directory that records its lookups."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tessera.core.clients import Client

_BASE = Client(
    client_id="app",
    secret_hash=b"\x01" * 32,
    previous_secret_hash=None,
    previous_secret_expires_at=None,
    scopes=frozenset(),
    default_scopes=frozenset(),
    audiences=(),
    grant_types=frozenset({"client_credentials"}),
    token_ttl=None,
    signing_alg=None,
    disabled=False,
)


def make_client(**fields: Any) -> Client:
    return replace(_BASE, **fields)


class Directory:
    def __init__(self, *clients: Client) -> None:
        self._clients = {client.client_id: client for client in clients}
        self.lookups: list[str] = []

    async def get(self, client_id: str) -> Client | None:
        self.lookups.append(client_id)
        return self._clients.get(client_id)
