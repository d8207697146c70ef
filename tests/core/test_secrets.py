from __future__ import annotations

import re

import pytest

from tessera.core import secrets as client_secrets
from tessera.core.secrets import (
    generate_secret,
    hash_secret,
    looks_like_secret,
    secret_matches,
)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PEPPER = b"p" * 32
OTHER_PEPPER = b"q" * 32
CURRENT = generate_secret()
PREVIOUS = generate_secret()
STRANGER = generate_secret()


def _base62_value(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + ALPHABET.index(char)
    return value


def test_generated_secret_has_the_documented_shape() -> None:
    secret = generate_secret()

    assert re.fullmatch(r"tsec_[0-9A-Za-z]{49}", secret)
    assert len(secret) == 5 + 43 + 6
    assert looks_like_secret(secret)


def test_generated_secrets_differ() -> None:
    assert len({generate_secret() for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "random_value",
    [
        pytest.param(0, id="all zero bits"),
        pytest.param(2**256 - 1, id="all 256 bits set"),
        pytest.param(2**255 + 12345, id="high bit set"),
    ],
)
def test_secret_body_carries_all_256_random_bits(
    monkeypatch: pytest.MonkeyPatch, random_value: int
) -> None:
    requested: list[int] = []

    def randbits(bits: int) -> int:
        requested.append(bits)
        return random_value

    monkeypatch.setattr(client_secrets.secrets, "randbits", randbits)

    secret = generate_secret()

    assert requested == [256]
    body = secret[5:48]
    assert len(body) == 43
    assert _base62_value(body) == random_value
    assert looks_like_secret(secret)


@pytest.mark.parametrize("position", range(5, 54))
def test_a_one_character_change_fails_the_checksum(position: int) -> None:
    secret = CURRENT
    replacement = ALPHABET[(ALPHABET.index(secret[position]) + 1) % 62]

    changed = secret[:position] + replacement + secret[position + 1 :]

    assert not looks_like_secret(changed)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("tsec_", id="prefix only"),
        pytest.param(CURRENT[:-1], id="one character short"),
        pytest.param(CURRENT + "0", id="one character long"),
        pytest.param(CURRENT + "\n", id="trailing newline"),
        pytest.param("TSEC_" + CURRENT[5:], id="prefix in capitals"),
        pytest.param("tsek_" + CURRENT[5:], id="another prefix"),
        pytest.param(CURRENT[:10] + "-" + CURRENT[11:], id="non-base62 char"),
        pytest.param(CURRENT[5:], id="no prefix"),
    ],
)
def test_looks_like_secret_rejects(value: str) -> None:
    assert not looks_like_secret(value)


def test_hash_secret_is_hmac_sha256() -> None:
    # RFC 4231 test case 2.
    digest = hash_secret(b"Jefe", "what do ya want for nothing?")

    assert digest.hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@pytest.mark.parametrize(
    ("presented", "stored", "expected"),
    [
        pytest.param(CURRENT, [CURRENT, None], True, id="current, no previous"),
        pytest.param(CURRENT, [CURRENT, PREVIOUS], True, id="current, with previous"),
        pytest.param(PREVIOUS, [CURRENT, PREVIOUS], True, id="previous"),
        pytest.param(PREVIOUS, [CURRENT, None], False, id="previous slot empty"),
        pytest.param(STRANGER, [CURRENT, PREVIOUS], False, id="neither"),
        pytest.param(CURRENT, [None, None], False, id="both slots empty"),
        pytest.param(CURRENT, [], False, id="no slots"),
        pytest.param(CURRENT, ["other pepper"], False, id="hashed with other pepper"),
    ],
)
def test_secret_matches(
    presented: str, stored: list[str | None], expected: bool
) -> None:
    def stored_hash(secret: str | None) -> bytes | None:
        if secret is None:
            return None
        if secret == "other pepper":
            return hash_secret(OTHER_PEPPER, presented)
        return hash_secret(PEPPER, secret)

    hashes = [stored_hash(secret) for secret in stored]

    assert secret_matches(PEPPER, presented, *hashes) is expected
