from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from tessera.keys import master
from tessera.keys.master import MasterKeyError

RAW = bytes(range(32))
ENCODED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


def _hkdf_sha256(ikm: bytes, info: bytes) -> bytes:
    """RFC 5869 with an absent salt and 32 bytes of output: one block."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_encode_is_unpadded_base64url() -> None:
    assert master.encode(RAW) == ENCODED
    assert master.decode(ENCODED) == RAW


def test_generate_makes_a_fresh_key_each_time() -> None:
    first, second = master.generate(), master.generate()

    assert len(first) == 43
    assert len(master.decode(first)) == 32
    assert first != second


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(ENCODED, RAW, id="unpadded"),
        pytest.param(ENCODED + "=", RAW, id="padded"),
        pytest.param(f"  {ENCODED}\n", RAW, id="surrounding whitespace"),
        pytest.param("_" * 42 + "8", b"\xff" * 32, id="url-safe alphabet"),
    ],
)
def test_decode_accepts(text: str, expected: bytes) -> None:
    assert master.decode(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "the master key must be 32 bytes, got 0", id="empty"),
        pytest.param(
            master.encode(RAW[:31]),
            "the master key must be 32 bytes, got 31",
            id="31 bytes",
        ),
        pytest.param(
            master.encode(RAW + b"\0"),
            "the master key must be 32 bytes, got 33",
            id="33 bytes",
        ),
        pytest.param(
            "!!" + ENCODED, "the master key is not valid base64url", id="junk prefix"
        ),
        pytest.param(
            ENCODED[:20] + " " + ENCODED[20:],
            "the master key is not valid base64url",
            id="inner space",
        ),
        pytest.param(
            "+" * 42 + "w",
            "the master key is not valid base64url",
            id="standard base64 alphabet",
        ),
        pytest.param(
            ENCODED[:42] + "é", "the master key is not valid base64url", id="non-ASCII"
        ),
    ],
)
def test_decode_rejects(text: str, message: str) -> None:
    with pytest.raises(MasterKeyError) as raised:
        master.decode(text)

    assert str(raised.value) == message


def test_load_creates_the_file_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "master.key"

    key = master.load(None, path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == master.encode(key) + "\n"
    assert len(key) == 32


def test_load_reuses_the_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = master.load(None, path)
    written = path.read_bytes()

    second = master.load(None, path)

    assert second == first
    assert path.read_bytes() == written


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("not a key!", "the master key is not valid base64url", id="junk"),
        pytest.param(
            master.encode(RAW[:16]) + "\n",
            "the master key must be 32 bytes, got 16",
            id="short",
        ),
        pytest.param("", "the master key must be 32 bytes, got 0", id="empty file"),
    ],
)
def test_load_never_overwrites_a_malformed_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "master.key"
    path.write_text(content)

    with pytest.raises(MasterKeyError) as raised:
        master.load(None, path)

    assert str(raised.value) == message
    assert path.read_text() == content


def test_load_prefers_the_given_value_and_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"

    assert master.load(ENCODED, path) == RAW
    assert not path.exists()


def test_load_prefers_the_given_value_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(master.generate() + "\n")

    assert master.load(ENCODED, path) == RAW


def test_load_treats_an_empty_value_as_unset(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(ENCODED + "\n")

    assert master.load("", path) == RAW


def test_derive_uses_hkdf_with_one_label_per_purpose() -> None:
    derived = master.derive(RAW)

    assert derived.key_encryption == _hkdf_sha256(RAW, b"tessera/v1/key-encryption")
    assert derived.secret_pepper == _hkdf_sha256(
        RAW, b"tessera/v1/client-secret-pepper"
    )


def test_derived_keys_differ_per_purpose_and_per_master_key() -> None:
    derived = master.derive(RAW)
    other = master.derive(bytes(32))

    assert len({derived.key_encryption, derived.secret_pepper, RAW}) == 3
    assert other.key_encryption != derived.key_encryption
    assert other.secret_pepper != derived.secret_pepper
