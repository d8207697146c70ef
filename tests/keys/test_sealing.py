from __future__ import annotations

from collections.abc import Callable

import pytest

from tessera.keys import sealing
from tessera.keys.master import MasterKeyError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PLAINTEXT = b"pkcs8 private key bytes"
AAD = b"kid-1"

WRONG_KEY_MESSAGE = (
    "the master key does not match the one this database was sealed with "
    "(or a sealed value was altered); set TESSERA_MASTER_KEY or "
    "TESSERA_MASTER_KEY_FILE to the original key"
)
FORMAT_MESSAGE = "a sealed value has an unknown format"


def test_seal_then_unseal_returns_the_plaintext() -> None:
    sealed = sealing.seal(KEY, PLAINTEXT, AAD)

    assert sealing.unseal(KEY, sealed, AAD) == PLAINTEXT


def test_sealed_value_is_version_nonce_ciphertext_and_tag() -> None:
    sealed = sealing.seal(KEY, PLAINTEXT, AAD)

    assert sealed[:1] == b"\x01"
    assert len(sealed) == 1 + 12 + len(PLAINTEXT) + 16
    assert PLAINTEXT not in sealed


def test_each_seal_uses_a_fresh_nonce() -> None:
    first = sealing.seal(KEY, PLAINTEXT, AAD)
    second = sealing.seal(KEY, PLAINTEXT, AAD)

    assert first[1:13] != second[1:13]
    assert first != second


@pytest.mark.parametrize(
    ("key", "aad"),
    [
        pytest.param(OTHER_KEY, AAD, id="another master key"),
        pytest.param(KEY, b"kid-2", id="blob moved to another kid"),
        pytest.param(KEY, b"", id="associated data dropped"),
    ],
)
def test_unseal_fails_without_the_same_key_and_associated_data(
    key: bytes, aad: bytes
) -> None:
    sealed = sealing.seal(KEY, PLAINTEXT, AAD)

    with pytest.raises(MasterKeyError) as raised:
        sealing.unseal(key, sealed, aad)

    assert str(raised.value) == WRONG_KEY_MESSAGE


def _flip_last_byte(sealed: bytes) -> bytes:
    return sealed[:-1] + bytes([sealed[-1] ^ 1])


def test_unseal_rejects_a_tampered_tag() -> None:
    sealed = _flip_last_byte(sealing.seal(KEY, PLAINTEXT, AAD))

    with pytest.raises(MasterKeyError, match="^the master key does not match"):
        sealing.unseal(KEY, sealed, AAD)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda sealed: b"", id="empty"),
        pytest.param(lambda sealed: b"\x02" + sealed[1:], id="unknown version 2"),
        pytest.param(lambda sealed: b"\x00" + sealed[1:], id="version 0"),
        pytest.param(lambda sealed: sealed[:28], id="shorter than version+nonce+tag"),
    ],
)
def test_unseal_rejects_an_unknown_format(mangle: Callable[[bytes], bytes]) -> None:
    sealed = mangle(sealing.seal(KEY, PLAINTEXT, AAD))

    with pytest.raises(MasterKeyError) as raised:
        sealing.unseal(KEY, sealed, AAD)

    assert str(raised.value) == FORMAT_MESSAGE


def test_unseal_accepts_the_shortest_well_formed_value() -> None:
    sealed = sealing.seal(KEY, b"", AAD)

    assert len(sealed) == 29
    assert sealing.unseal(KEY, sealed, AAD) == b""
