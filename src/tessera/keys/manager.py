"""Key lifecycle against the store: create, rotate, load, prune."""

from __future__ import annotations

import json
from collections.abc import Callable

from tessera.core.audit import Audit
from tessera.keys import sealing
from tessera.keys.master import MasterKeyError
from tessera.keys.ring import KeyRing, schedule
from tessera.keys.signing import (
    SigningKey,
    generate_private_key,
    private_key_from_bytes,
    private_key_to_bytes,
    public_jwk,
)
from tessera.store.keys import KeyRepository
from tessera.store.models import SigningKeyRow

_CHECK_PLAINTEXT = b"tessera master key check v1"
_CHECK_AAD = b"meta:master_key_check"


class KeyManager:
    def __init__(
        self,
        repository: KeyRepository,
        key_encryption_key: bytes,
        *,
        max_token_ttl: int,
        publish_ahead: int,
        rotation_interval: int,
        audit: Audit,
        clock: Callable[[], float],
    ) -> None:
        self._repository = repository
        self._kek = key_encryption_key
        self._max_token_ttl = max_token_ttl
        self._publish_ahead = publish_ahead
        self._rotation_interval = rotation_interval
        self._audit = audit
        self._clock = clock

    async def check_master_key(self) -> None:
        """Fail with MasterKeyError when the database was sealed under another
        master key, before anything is read or written with the wrong one."""
        stored = await self._repository.master_key_check()
        if stored is None:
            sealed = sealing.seal(self._kek, _CHECK_PLAINTEXT, _CHECK_AAD)
            await self._repository.set_master_key_check(sealed)
            stored = await self._repository.master_key_check()
            assert stored is not None
        try:
            sealing.unseal(self._kek, stored, _CHECK_AAD)
        except MasterKeyError:
            raise MasterKeyError(
                "the master key does not match the one this database was sealed "
                "with; set TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE to the "
                "original key"
            ) from None

    async def load(self) -> KeyRing:
        entries = []
        for row in await self._repository.all():
            der = sealing.unseal(self._kek, row.sealed_private_key, row.kid.encode())
            key = SigningKey(
                row.kid, row.alg, private_key_from_bytes(der), row.activates_at
            )
            entries.append((key, json.loads(row.public_jwk)))
        return KeyRing(schedule(entries, self._max_token_ttl), self._clock())

    async def ensure(self, algs: set[str]) -> None:
        """Make a key for every algorithm that has none. It signs at once:
        no verifier can have cached a key set for an algorithm not yet used."""
        present = {row.alg for row in await self._repository.all()}
        for alg in sorted(algs - present):
            await self._add(alg, activates_at=int(self._clock()), reason="initial")

    async def rotate(self, alg: str, *, reason: str = "manual") -> str:
        """A new key, published now, signing ``publish_ahead`` seconds later;
        at once when the algorithm has no key yet, as in ``ensure``."""
        activates_at = int(self._clock())
        if any(row.alg == alg for row in await self._repository.all()):
            activates_at += self._publish_ahead
        return await self._add(alg, activates_at=activates_at, reason=reason)

    async def rotate_due(self) -> list[str]:
        """Rotate each algorithm whose newest key is older than the rotation
        interval, and delete keys whose last token has expired."""
        now = int(self._clock())
        newest: dict[str, int] = {}
        for row in await self._repository.all():
            newest[row.alg] = max(newest.get(row.alg, 0), row.activates_at)
        rotated = [
            await self.rotate(alg, reason="scheduled")
            for alg, activated in sorted(newest.items())
            if activated + self._rotation_interval <= now
        ]
        await self.prune()
        return rotated

    async def prune(self) -> list[str]:
        ring = await self.load()
        retired = ring.retired(self._clock())
        await self._repository.delete(retired)
        for kid in retired:
            self._audit.emit("key.retired", kid=kid)
        return retired

    async def _add(self, alg: str, *, activates_at: int, reason: str) -> str:
        private_key = generate_private_key(alg)
        jwk = public_jwk(private_key, alg)
        kid = str(jwk["kid"])
        sealed = sealing.seal(
            self._kek, private_key_to_bytes(private_key), kid.encode()
        )
        await self._repository.add(
            SigningKeyRow(
                kid=kid,
                alg=alg,
                sealed_private_key=sealed,
                public_jwk=json.dumps(jwk),
                created_at=int(self._clock()),
                activates_at=activates_at,
            )
        )
        self._audit.emit(
            "key.created", kid=kid, alg=alg, activates_at=activates_at, reason=reason
        )
        return kid
