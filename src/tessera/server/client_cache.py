"""A bounded in-memory view of clients, so issuance for a known client
never touches the database.

Entries, including "no such client", stay until the store's ``clients``
version changes (see ``changes.py``), which empties the whole cache."""

from __future__ import annotations

from collections import OrderedDict

from tessera.core.clients import Client, ClientDirectory


class CachedClientDirectory:
    def __init__(self, source: ClientDirectory, *, max_entries: int = 10_000) -> None:
        self._source = source
        self._max_entries = max_entries
        self._entries: OrderedDict[str, Client | None] = OrderedDict()
        # Bumped by clear(), so a lookup that raced a clear stores nothing.
        self._generation = 0
        self.hits = 0
        self.misses = 0

    async def get(self, client_id: str) -> Client | None:
        try:
            client = self._entries[client_id]
        except KeyError:
            pass
        else:
            self.hits += 1
            self._entries.move_to_end(client_id)
            return client
        self.misses += 1
        generation = self._generation
        client = await self._source.get(client_id)
        if generation == self._generation:
            self._entries[client_id] = client
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return client

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
