"""Trust-policy repository. Every write bumps the ``policies`` state version
in the same transaction, so every node reloads its policies within a
second (see tessera.server.runtime)."""

from __future__ import annotations

import json
import time

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.federation import Condition, TrustPolicy
from tessera.store.changes import bump
from tessera.store.models import TrustPolicyRow


class PolicyExists(Exception):
    pass


class PolicyNotFound(Exception):
    pass


def to_policy(row: TrustPolicyRow) -> TrustPolicy:
    return TrustPolicy(
        name=row.name,
        issuer=row.issuer,
        audience=row.audience,
        conditions=tuple(Condition.from_dict(c) for c in json.loads(row.conditions)),
        scopes=frozenset(row.scopes.split()),
        audiences=tuple(row.audiences.split()),
        max_ttl=row.max_ttl,
        subject=row.subject,
        profile=row.profile,
        pinned_jwks=row.pinned_jwks,
        disabled=row.disabled,
    )


def _columns(policy: TrustPolicy) -> dict[str, object]:
    return {
        "name": policy.name,
        "issuer": policy.issuer,
        "audience": policy.audience,
        "conditions": json.dumps([c.to_dict() for c in policy.conditions]),
        "scopes": " ".join(sorted(policy.scopes)),
        "audiences": " ".join(policy.audiences),
        "max_ttl": policy.max_ttl,
        "subject": policy.subject,
        "profile": policy.profile,
        "pinned_jwks": policy.pinned_jwks,
        "disabled": policy.disabled,
    }


class PolicyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def all(self) -> list[TrustPolicy]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(TrustPolicyRow).order_by(TrustPolicyRow.name)
            )
            return [to_policy(row) for row in rows]

    async def get(self, name: str) -> TrustPolicy | None:
        async with self._sessions() as session:
            row = await session.get(TrustPolicyRow, name)
            return to_policy(row) if row else None

    async def create(self, policy: TrustPolicy) -> None:
        now = int(time.time())
        try:
            async with self._sessions.begin() as session:
                if await session.get(TrustPolicyRow, policy.name) is not None:
                    raise PolicyExists(policy.name)
                session.add(
                    TrustPolicyRow(created_at=now, updated_at=now, **_columns(policy))
                )
                await bump(session, "policies")
        except IntegrityError:
            raise PolicyExists(policy.name) from None

    async def save(self, policy: TrustPolicy) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(TrustPolicyRow, policy.name, with_for_update=True)
            if row is None:
                raise PolicyNotFound(policy.name)
            for name, value in _columns(policy).items():
                setattr(row, name, value)
            row.updated_at = int(time.time())
            await bump(session, "policies")

    async def delete(self, name: str) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(TrustPolicyRow).where(TrustPolicyRow.name == name)
            )
            if result.rowcount == 0:
                raise PolicyNotFound(name)
            await bump(session, "policies")
