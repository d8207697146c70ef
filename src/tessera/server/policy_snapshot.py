"""Every trust policy, held in memory and reloaded whole when the store's
``policies`` version moves, as the clients are (see client_snapshot.py):
matching an external token reads no database."""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from tessera.core.federation import TrustPolicy


class PolicySource(Protocol):
    async def all(self) -> list[TrustPolicy]:
        """Every policy in the store, in name order."""
        ...


class PolicySnapshot:
    def __init__(self, source: PolicySource) -> None:
        self._source = source
        self._by_name: dict[str, TrustPolicy] = {}
        self._by_issuer: dict[str, list[TrustPolicy]] = {}

    async def reload(self) -> None:
        policies = await self._source.all()
        by_issuer: dict[str, list[TrustPolicy]] = defaultdict(list)
        for policy in policies:
            if not policy.disabled:
                by_issuer[policy.issuer].append(policy)
        self._by_name = {policy.name: policy for policy in policies}
        self._by_issuer = dict(by_issuer)

    def for_issuer(self, issuer: str) -> list[TrustPolicy]:
        return self._by_issuer.get(issuer, [])

    def get(self, name: str) -> TrustPolicy | None:
        return self._by_name.get(name)
