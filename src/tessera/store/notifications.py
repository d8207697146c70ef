"""Change notifications from PostgreSQL (LISTEN/NOTIFY), so a node reloads
what another process changed within milliseconds, not at its next poll.

A notification only says "look now": the node then reads the state
versions as it does when polling. A lost notification (a dropped
connection, a database restart) costs at most one poll interval, which is
why the poll keeps running; correctness never waits on a message."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy.engine import URL

from tessera.store.changes import CHANGES_CHANNEL

logger = logging.getLogger("tessera.store")


def asyncpg_dsn(url: URL) -> str:
    """The plain libpq DSN asyncpg wants, from the SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """Sets ``changed`` whenever any process commits a change, for as long
    as it runs; reconnects by itself after the database comes back."""

    def __init__(self, dsn: str, changed: asyncio.Event, *, retry: float) -> None:
        self._dsn = dsn
        self._changed = changed
        self._retry = retry

    async def run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                logger.warning("change listener: %s", type(error).__name__)
            # Whatever was missed while disconnected is found by a reload.
            self._changed.set()
            await asyncio.sleep(self._retry)

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=3)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANGES_CHANNEL, self._notified)
            # Changes made before LISTEN took effect would be missed.
            self._changed.set()
            while not lost.is_set():
                # A dead peer without a closed socket is found by asking.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=5)
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=3)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=1)

    def _notified(self, *_: object) -> None:
        self._changed.set()
