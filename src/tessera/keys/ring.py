"""The key ring: which key signs now, and which keys are published.

Every state follows from each key's ``activates_at`` and the server's
maximum token lifetime, so nothing but the keys themselves is stored:

- a key signs from its ``activates_at`` until the next key of its
  algorithm activates;
- a key is published from its creation (so before it signs: it is created
  ``key_publish_ahead`` seconds before it activates) until the last token
  it signed has expired, that is ``max_token_ttl`` after its successor
  activated;
- after that it is retired and may be deleted.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from tessera.keys.signing import SigningKey


class NoSigningKey(Exception):
    """No key of the requested algorithm is active."""


@dataclass(frozen=True, slots=True)
class PublishedKey:
    key: SigningKey
    jwk: dict[str, object]
    # When the last token this key may have signed expires; inf while current.
    retires_at: float


def schedule(
    keys: Iterable[tuple[SigningKey, dict[str, object]]], max_token_ttl: int
) -> list[PublishedKey]:
    """Each key with the time it retires, oldest activation first per alg.

    The order depends on the keys alone, never on the order the store
    returned them in, so every node publishes the same bytes (and ETag)."""
    by_alg: dict[str, list[tuple[SigningKey, dict[str, object]]]] = {}
    for key, jwk in keys:
        by_alg.setdefault(key.alg, []).append((key, jwk))
    result = []
    for alg in sorted(by_alg):
        entries = by_alg[alg]
        entries.sort(key=lambda entry: (entry[0].activates_at, entry[0].kid))
        for index, (key, jwk) in enumerate(entries):
            if index + 1 < len(entries):
                retires_at = entries[index + 1][0].activates_at + max_token_ttl
            else:
                retires_at = math.inf
            result.append(PublishedKey(key, jwk, retires_at))
    return result


class KeyRing:
    """An immutable-per-refresh view of the issuer's keys, cheap to query on
    the hot path: choosing a signing key is a dict lookup and one float
    comparison until the next scheduled activation or retirement."""

    def __init__(self, keys: list[PublishedKey], now: float) -> None:
        self.entries = keys
        self._choose(now)

    def _choose(self, now: float) -> None:
        self._signing: dict[str, SigningKey] = {}
        published = []
        upcoming = [math.inf]
        for entry in self.entries:
            if entry.retires_at <= now:
                continue
            published.append(entry.jwk)
            upcoming.append(entry.retires_at)
            key = entry.key
            if key.activates_at > now:
                upcoming.append(key.activates_at)
                continue
            current = self._signing.get(key.alg)
            if current is None or key.activates_at > current.activates_at:
                self._signing[key.alg] = key
        self._next_change = min(upcoming)
        body = json.dumps({"keys": published}, separators=(",", ":")).encode()
        self._jwks_body = body
        self._jwks_etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    def signing_key(self, alg: str, now: float) -> SigningKey:
        if now >= self._next_change:
            self._choose(now)
        try:
            return self._signing[alg]
        except KeyError:
            raise NoSigningKey(alg) from None

    def jwks(self, now: float) -> tuple[bytes, str]:
        if now >= self._next_change:
            self._choose(now)
        return self._jwks_body, self._jwks_etag

    def public_jwks(self, now: float) -> list[dict[str, object]]:
        """The published keys, parsed: for operators and tests."""
        return json.loads(self.jwks(now)[0])["keys"]

    def retired(self, now: float) -> list[str]:
        return [entry.key.kid for entry in self.entries if entry.retires_at <= now]
