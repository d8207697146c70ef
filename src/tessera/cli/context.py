"""What every operator command opens: the settings, the store, the keys."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tessera.config import Settings
from tessera.core.audit import Audit
from tessera.keys import master
from tessera.keys.manager import KeyManager
from tessera.server.audit import JsonLinesAudit
from tessera.store import database
from tessera.store.clients import ClientRepository
from tessera.store.keys import KeyRepository


@dataclass
class Operator:
    settings: Settings
    clients: ClientRepository
    keys: KeyManager
    pepper: bytes
    audit: Audit


@contextlib.asynccontextmanager
async def operator(settings: Settings) -> AsyncIterator[Operator]:
    derived = master.derive(
        master.load(
            settings.master_key.get_secret_value() if settings.master_key else None,
            settings.resolved_master_key_file,
        )
    )
    engine = database.create_engine(settings.resolved_database_url)
    audit = JsonLinesAudit(settings.audit_log)
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
            clock=time.time,
        )
        await keys.check_master_key()
        yield Operator(
            settings, ClientRepository(sessions), keys, derived.secret_pepper, audit
        )
    finally:
        await engine.dispose()
        audit.close()
