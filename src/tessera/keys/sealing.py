"""Encryption at rest for private keys: AES-256-GCM, the row's identity as
associated data so a sealed blob cannot be moved to another row."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tessera.keys.master import MasterKeyError

# A version byte first, so the format can change without guessing.
_VERSION = b"\x01"
_NONCE_BYTES = 12


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def unseal(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE_BYTES + 16:
        raise MasterKeyError("a sealed value has an unknown format")
    nonce = sealed[1 : 1 + _NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[1 + _NONCE_BYTES :], associated_data)
    except InvalidTag:
        # GCM cannot tell a wrong key from a tampered or moved value; the
        # start-up check value makes the first the likely cause.
        raise MasterKeyError(
            "the master key does not match the one this database was sealed "
            "with (or a sealed value was altered); set TESSERA_MASTER_KEY or "
            "TESSERA_MASTER_KEY_FILE to the original key"
        ) from None
