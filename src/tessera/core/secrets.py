"""Client secrets: generated high-entropy, stored only as a keyed hash.

A secret reads ``tsec_`` + 43 base62 characters (256 random bits) + a
6-character CRC32 checksum, so that secret scanners can recognise a leaked
one and reject look-alikes without a database. Since the secret is random,
a fast keyed hash (HMAC-SHA-256 with a server pepper) is enough: there is
nothing to brute-force, and no slow hash on the issuance hot path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

PREFIX = "tsec_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS = 43  # 62**43 > 2**256
_CHECKSUM_CHARS = 6
_ABSENT = bytes(32)
_SHAPE = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{_RANDOM_CHARS + _CHECKSUM_CHARS}}}$")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_CHARS)


def generate_secret() -> str:
    body = _base62(secrets.randbits(256), _RANDOM_CHARS)
    return PREFIX + body + _checksum(body)


def looks_like_secret(value: str) -> bool:
    """True for a well-formed secret with a valid checksum (for scanners)."""
    if not _SHAPE.match(value):
        return False
    body = value[len(PREFIX) : len(PREFIX) + _RANDOM_CHARS]
    return hmac.compare_digest(value[-_CHECKSUM_CHARS:], _checksum(body))


def hash_secret(pepper: bytes, secret: str) -> bytes:
    return hmac.new(
        pepper, secret.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).digest()


def secret_matches(pepper: bytes, secret: str, *stored: bytes | None) -> bool:
    """Compare against every stored hash, always all of them, in constant time."""
    presented = hash_secret(pepper, secret)
    matched = False
    for candidate in stored:
        # An absent slot is compared against a dummy, so the work is the same.
        equal = hmac.compare_digest(presented, candidate or _ABSENT)
        matched = matched or (equal and candidate is not None)
    return matched
