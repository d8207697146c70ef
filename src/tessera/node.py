"""What every process that touches the store opens first: the master key,
the database (migrated), the audit sink and the key manager.

``tessera serve`` and every operator command start here, so a wrong master
key stops both in the same way, before anything is read or written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tessera.config import Settings
from tessera.core.audit import Audit
from tessera.keys import master
from tessera.keys.manager import KeyManager
from tessera.server.audit import JsonLinesAudit
from tessera.store import database
from tessera.store.keys import KeyRepository


class AuditSink(Audit, Protocol):
    """The audit a node owns, and closes when the node closes."""

    def close(self) -> None:
        """Write what is pending and release the destination."""
        ...


@dataclass
class Node:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    audit: AuditSink
    keys: KeyManager
    pepper: bytes

    async def close(self) -> None:
        await self.engine.dispose()
        self.audit.close()


async def open_node(
    settings: Settings,
    clock: Callable[[], float],
    *,
    wrap_audit: Callable[[AuditSink], AuditSink] | None = None,
) -> Node:
    """Open and check everything; raises MasterKeyError on a wrong key."""
    derived = master.derive(
        master.load(
            settings.master_key.get_secret_value() if settings.master_key else None,
            settings.resolved_master_key_file,
        )
    )
    engine = database.create_engine(settings.resolved_database_url)
    audit: AuditSink = JsonLinesAudit(settings.audit_log)
    # Wrapped here, before the key manager takes it: the server counts key
    # events as metrics (see server/metrics.py).
    if wrap_audit is not None:
        audit = wrap_audit(audit)
    try:
        await database.migrate(engine)
        sessions = database.sessions(engine)
        keys = KeyManager(
            KeyRepository(sessions),
            derived.key_encryption,
            max_token_ttl=settings.max_token_ttl,
            publish_ahead=settings.key_publish_ahead,
            rotation_interval=settings.key_rotation_interval,
            audit=audit,
            clock=clock,
        )
        await keys.check_master_key()
        pepper = await keys.secret_pepper(derived.secret_pepper)
    except BaseException:
        await engine.dispose()
        audit.close()
        raise
    return Node(settings, engine, sessions, audit, keys, pepper)
