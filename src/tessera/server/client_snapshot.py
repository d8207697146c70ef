"""Every client, held in memory, so that authenticating a client never
touches the database: not for a known client, and not for an unknown one.

Answering both from memory is what keeps their timing alike: a cache filled
on demand would answer a busy client from memory but look an unknown id up
in the store, and the difference would tell which ids exist. The snapshot is
reloaded whole when the store's ``clients`` version changes (see
``Runtime.refresh``), so a change made anywhere reaches this node within one
``change_poll_interval``. While the store cannot be read, the last snapshot
keeps serving for ``stale_after`` seconds (``store_outage_grace``), after
which every lookup fails with 503: a change made during a long outage, such
as a disabled client, must not be ignored for ever."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from tessera.core.clients import Client
from tessera.core.errors import TemporarilyUnavailable


class ClientSource(Protocol):
    async def all(self) -> list[Client]:
        """Every client in the store."""
        ...


def _nothing() -> None:
    pass


class ClientSnapshot:
    def __init__(
        self,
        source: ClientSource,
        *,
        clock: Callable[[], float] = time.time,
        stale_after: float = float("inf"),
        on_hit: Callable[[], object] = _nothing,
        on_miss: Callable[[], object] = _nothing,
    ) -> None:
        self._source = source
        self._clients: dict[str, Client] = {}
        self._clock = clock
        self._stale_after = stale_after
        self._valid_until = float("inf")
        # Counted on every lookup, the metrics' cache hit ratio: each is a
        # pre-bound counter's inc, as cheap as the lookup itself.
        self._on_hit = on_hit
        self._on_miss = on_miss

    def confirm(self, reached_at: float) -> None:
        """The store was read at ``reached_at`` and the snapshot matches it."""
        self._valid_until = reached_at + self._stale_after

    async def reload(self) -> None:
        clients = await self._source.all()
        self._clients = {client.client_id: client for client in clients}

    async def get(self, client_id: str) -> Client | None:
        if self._clock() > self._valid_until:
            raise TemporarilyUnavailable(detail="client snapshot too old")
        client = self._clients.get(client_id)
        if client is None:
            self._on_miss()
        else:
            self._on_hit()
        return client

    def __contains__(self, client_id: object) -> bool:
        """Whether the id is a client's; not counted as a lookup."""
        return client_id in self._clients

    def __len__(self) -> int:
        return len(self._clients)
