"""What every operator command opens: the settings, the store, the keys."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tessera.config import Settings
from tessera.core.audit import Audit
from tessera.core.clients import Client
from tessera.core.secrets import generate_secret, hash_secret
from tessera.keys.manager import KeyManager
from tessera.node import open_node
from tessera.store.clients import ClientRepository


@dataclass
class Operator:
    settings: Settings
    clients: ClientRepository
    keys: KeyManager
    pepper: bytes
    audit: Audit

    async def register(
        self,
        client_id: str,
        *,
        scopes: frozenset[str],
        audiences: tuple[str, ...],
        **options: Any,
    ) -> str:
        """Create a client with a new secret, and return the secret: the only
        time it exists outside the caller's hands is this return value."""
        secret = generate_secret()
        client = Client.register(
            client_id,
            hash_secret(self.pepper, secret),
            scopes=scopes,
            audiences=audiences,
            **options,
        )
        if client.signing_alg:
            await self.keys.ensure({client.signing_alg})
        await self.clients.create(client)
        self.audit.emit("client.created", client_id=client_id)
        return secret


@contextlib.asynccontextmanager
async def operator(settings: Settings) -> AsyncIterator[Operator]:
    node = await open_node(settings, time.time)
    try:
        yield Operator(
            settings,
            ClientRepository(node.sessions),
            node.keys,
            node.pepper,
            node.audit,
        )
    finally:
        await node.close()
