"""What every operator command opens: the settings, the store, the keys."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tessera.config import Settings
from tessera.core.audit import Audit
from tessera.core.client_assertion import PRIVATE_KEY_JWT
from tessera.core.client_auth import PUBLIC
from tessera.core.clients import Client
from tessera.core.secrets import generate_secret, hash_secret
from tessera.keys.manager import KeyManager
from tessera.node import open_node
from tessera.store.clients import ClientRepository
from tessera.store.consents import ConsentRepository
from tessera.store.policies import PolicyRepository
from tessera.store.users import UserRepository


@dataclass
class Operator:
    settings: Settings
    clients: ClientRepository
    keys: KeyManager
    pepper: bytes
    audit: Audit
    policies: PolicyRepository
    users: UserRepository
    consents: ConsentRepository

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
        await self._create(client)
        return secret

    async def register_key_client(
        self,
        client_id: str,
        *,
        jwks: str | None,
        jwks_uri: str | None,
        scopes: frozenset[str],
        audiences: tuple[str, ...],
        **options: Any,
    ) -> None:
        """Create a client that authenticates with private_key_jwt, with its
        public keys inline (``jwks``) or at ``jwks_uri``. It has no secret."""
        # The secret_hash column is required. Random bytes fill it: no secret
        # is known to hash to them, and authentication refuses any secret
        # for a private_key_jwt client before comparing.
        client = Client.register(
            client_id,
            secrets.token_bytes(32),
            scopes=scopes,
            audiences=audiences,
            **options,
        )
        await self._create(
            dataclasses.replace(
                client, auth_method=PRIVATE_KEY_JWT, jwks=jwks, jwks_uri=jwks_uri
            )
        )

    async def register_public_client(
        self,
        client_id: str,
        *,
        scopes: frozenset[str],
        audiences: tuple[str, ...],
        **options: Any,
    ) -> None:
        """Create a public client (RFC 6749 §2.1): a native or browser app
        that cannot keep a secret, so it has none and must use PKCE."""
        # Random bytes fill the required secret_hash, as for private_key_jwt:
        # no secret is known to hash to them.
        client = Client.register(
            client_id,
            secrets.token_bytes(32),
            scopes=scopes,
            audiences=audiences,
            **options,
        )
        await self._create(dataclasses.replace(client, auth_method=PUBLIC))

    async def _create(self, client: Client) -> None:
        if client.signing_alg:
            await self.keys.ensure({client.signing_alg})
        await self.clients.create(client)
        self.audit.emit("client.created", client_id=client.client_id)


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
            PolicyRepository(node.sessions),
            users=UserRepository(node.sessions),
            consents=ConsentRepository(node.sessions),
        )
    finally:
        await node.close()
