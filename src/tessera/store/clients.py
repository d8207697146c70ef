"""Client repository."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.clients import Client
from tessera.store.changes import bump
from tessera.store.models import ClientRow


def to_client(row: ClientRow) -> Client:
    return Client(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        previous_secret_hash=row.previous_secret_hash,
        previous_secret_expires_at=row.previous_secret_expires_at,
        scopes=frozenset(row.scopes.split()),
        default_scopes=frozenset(row.default_scopes.split()),
        audiences=tuple(row.audiences.split()),
        grant_types=frozenset(row.grant_types.split()),
        token_ttl=row.token_ttl,
        signing_alg=row.signing_alg,
        disabled=row.disabled,
        may_introspect=row.may_introspect,
        auth_method=row.auth_method,
        jwks=row.jwks,
        jwks_uri=row.jwks_uri,
        redirect_uris=tuple(row.redirect_uris.split()),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris.split()),
    )


class ClientExists(Exception):
    pass


class ClientNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """What an operator sees of a client: everything but its secret hash."""

    client: Client
    created_at: int
    updated_at: int


class ClientRepository:
    """Every write bumps the ``clients`` state version in the same
    transaction, which tells every node's cache to drop what it holds."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, client_id: str) -> Client | None:
        async with self._sessions() as session:
            row = await session.get(ClientRow, client_id)
            return to_client(row) if row else None

    async def all(self) -> list[Client]:
        async with self._sessions() as session:
            return [to_client(row) for row in await session.scalars(select(ClientRow))]

    async def record(self, client_id: str) -> ClientRecord:
        async with self._sessions() as session:
            row = await session.get(ClientRow, client_id)
            if row is None:
                raise ClientNotFound(client_id)
            return ClientRecord(to_client(row), row.created_at, row.updated_at)

    async def list(self) -> list[ClientRecord]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ClientRow).order_by(ClientRow.client_id)
            )
            return [
                ClientRecord(to_client(r), r.created_at, r.updated_at) for r in rows
            ]

    async def create(self, client: Client) -> None:
        now = int(time.time())
        try:
            async with self._sessions.begin() as session:
                if await session.get(ClientRow, client.client_id) is not None:
                    raise ClientExists(client.client_id)
                session.add(
                    ClientRow(created_at=now, updated_at=now, **_columns(client))
                )
                await bump(session, "clients")
        except IntegrityError:
            # Created concurrently between the check and the insert.
            raise ClientExists(client.client_id) from None

    async def save(self, client: Client) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(ClientRow, client.client_id, with_for_update=True)
            if row is None:
                raise ClientNotFound(client.client_id)
            for name, value in _columns(client).items():
                setattr(row, name, value)
            row.updated_at = int(time.time())
            await bump(session, "clients")

    async def delete(self, client_id: str) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ClientRow).where(ClientRow.client_id == client_id)
            )
            if result.rowcount == 0:
                raise ClientNotFound(client_id)
            await bump(session, "clients")


def _columns(client: Client) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "secret_hash": client.secret_hash,
        "previous_secret_hash": client.previous_secret_hash,
        "previous_secret_expires_at": client.previous_secret_expires_at,
        "scopes": " ".join(sorted(client.scopes)),
        "default_scopes": " ".join(sorted(client.default_scopes)),
        "audiences": " ".join(client.audiences),
        "grant_types": " ".join(sorted(client.grant_types)),
        "token_ttl": client.token_ttl,
        "signing_alg": client.signing_alg,
        "disabled": client.disabled,
        "may_introspect": client.may_introspect,
        "auth_method": client.auth_method,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "redirect_uris": " ".join(client.redirect_uris),
        "post_logout_redirect_uris": " ".join(client.post_logout_redirect_uris),
    }
