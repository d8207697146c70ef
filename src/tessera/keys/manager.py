"""Key lifecycle against the store: create, rotate, load, prune."""

from __future__ import annotations

import json
from collections.abc import Callable

from tessera.core.audit import Audit
from tessera.keys import master, sealing
from tessera.keys.master import MasterKeyError
from tessera.keys.ring import KeyRing, schedule
from tessera.keys.signing import (
    SigningKey,
    generate_private_key,
    private_key_from_bytes,
    private_key_to_bytes,
    public_jwk,
)
from tessera.store.keys import MASTER_KEY_CHECK, PEPPER_ROW, KeyRepository
from tessera.store.models import SigningKeyRow

_CHECK_PLAINTEXT = b"tessera master key check v1"
_CHECK_AAD = b"meta:master_key_check"
_PEPPER_AAD = b"meta:pepper"


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

    async def secret_pepper(self, derived: bytes) -> bytes:
        """The pepper client secrets are hashed under: the one derived from
        the master key, unless a master-key change carried an older one
        over (see ``change_master_key``)."""
        sealed = await self._repository.meta(PEPPER_ROW)
        if sealed is None:
            return derived
        return sealing.unseal(self._kek, sealed, _PEPPER_AAD)

    async def change_master_key(self, new_master_key: bytes, pepper: bytes) -> int:
        """Reseal every private key and the check value under a new master
        key, in one transaction, and carry the current pepper over, sealed
        under the new key: client secrets are stored only as hashes, so a new
        pepper would invalidate every one of them. Returns the key count."""
        new_kek = master.derive(new_master_key).key_encryption
        if new_kek == self._kek:
            raise MasterKeyError("the new master key is the current one")

        def reseal(row: SigningKeyRow) -> bytes:
            aad = row.kid.encode()
            private = sealing.unseal(self._kek, row.sealed_private_key, aad)
            return sealing.seal(new_kek, private, aad)

        count = await self._repository.reseal(
            reseal,
            {
                MASTER_KEY_CHECK: sealing.seal(new_kek, _CHECK_PLAINTEXT, _CHECK_AAD),
                PEPPER_ROW: sealing.seal(new_kek, pepper, _PEPPER_AAD),
            },
        )
        self._kek = new_kek
        self._audit.emit("master_key.changed", keys=count)
        return count

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
            await self._add(
                alg,
                activates_at=int(self._clock()),
                reason="initial",
                still_needed=lambda rows, alg=alg: _newest(rows, alg) is None,
            )

    async def rotate(self, alg: str, *, reason: str = "manual") -> str:
        """A new key, published now, signing ``publish_ahead`` seconds later;
        at once when the algorithm has no key yet, as in ``ensure``."""
        activates_at = int(self._clock())
        if any(row.alg == alg for row in await self._repository.all()):
            activates_at += self._publish_ahead
        kid = await self._add(alg, activates_at=activates_at, reason=reason)
        assert kid is not None
        return kid

    async def rotate_due(self) -> list[str]:
        """Rotate each algorithm whose newest key is older than the rotation
        interval, and delete keys whose last token has expired.

        Every node runs this; the check is repeated under the store's write
        lock, so however many race, one key is added per period."""
        now = int(self._clock())
        rows = await self._repository.all()
        rotated = []
        for alg in sorted({row.alg for row in rows}):
            if not self._due(rows, alg, now):
                continue
            kid = await self._add(
                alg,
                activates_at=now + self._publish_ahead,
                reason="scheduled",
                still_needed=lambda rows, alg=alg: self._due(rows, alg, now),
            )
            if kid is not None:
                rotated.append(kid)
        await self.prune()
        return rotated

    def _due(self, rows: list[SigningKeyRow], alg: str, now: int) -> bool:
        newest = _newest(rows, alg)
        return newest is not None and newest + self._rotation_interval <= now

    async def prune(self) -> list[str]:
        ring = await self.load()
        retired = ring.retired(self._clock())
        await self._repository.delete(retired)
        for kid in retired:
            self._audit.emit("key.retired", kid=kid)
        return retired

    async def _add(
        self,
        alg: str,
        *,
        activates_at: int,
        reason: str,
        still_needed: Callable[[list[SigningKeyRow]], bool] = lambda rows: True,
    ) -> str | None:
        """Add a new key; None when ``still_needed`` says another process
        made it unnecessary in the meantime."""
        private_key = generate_private_key(alg)
        jwk = public_jwk(private_key, alg)
        kid = str(jwk["kid"])
        sealed = sealing.seal(
            self._kek, private_key_to_bytes(private_key), kid.encode()
        )
        row = SigningKeyRow(
            kid=kid,
            alg=alg,
            sealed_private_key=sealed,
            public_jwk=json.dumps(jwk),
            created_at=int(self._clock()),
            activates_at=activates_at,
        )
        if not await self._repository.add(row, still_needed):
            return None
        self._audit.emit(
            "key.created", kid=kid, alg=alg, activates_at=activates_at, reason=reason
        )
        return kid


def _newest(rows: list[SigningKeyRow], alg: str) -> int | None:
    """When the newest key of ``alg`` starts (or started) signing."""
    return max((row.activates_at for row in rows if row.alg == alg), default=None)
