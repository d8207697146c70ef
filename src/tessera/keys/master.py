"""The master key, and the keys derived from it.

One 256-bit master key, from the environment or a 0600 file, never used
directly: HKDF derives one subkey per purpose, so that the key that seals
private keys is never the pepper that hashes client secrets.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASTER_KEY_BYTES = 32
# urlsafe_b64decode drops characters outside the alphabet; check them first.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one the data was
    sealed with."""


@dataclass(frozen=True, slots=True)
class DerivedKeys:
    key_encryption: bytes
    secret_pepper: bytes


def derive(master_key: bytes) -> DerivedKeys:
    return DerivedKeys(
        key_encryption=_hkdf(master_key, b"tessera/v1/key-encryption"),
        secret_pepper=_hkdf(master_key, b"tessera/v1/client-secret-pepper"),
    )


def _hkdf(master_key: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


def decode(text: str) -> bytes:
    text = text.strip()
    if not _BASE64URL.fullmatch(text):
        raise MasterKeyError("the master key is not valid base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise MasterKeyError("the master key is not valid base64url") from exc
    if len(raw) != MASTER_KEY_BYTES:
        raise MasterKeyError(
            f"the master key must be {MASTER_KEY_BYTES} bytes, got {len(raw)}"
        )
    return raw


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate() -> str:
    return encode(secrets.token_bytes(MASTER_KEY_BYTES))


def load(value: str | None, path: Path) -> bytes:
    """The master key from ``value`` if given, else from ``path``, which is
    created (mode 0600, never overwritten) when it does not exist yet."""
    if value:
        return decode(value)
    try:
        return decode(path.read_text())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    text = generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first; use theirs.
        return decode(path.read_text())
    with os.fdopen(fd, "w") as file:
        file.write(text + "\n")
    return decode(text)
