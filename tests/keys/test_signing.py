from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from typing import Any

import jwt
import pytest

from tessera.keys.signing import (
    RSA_KEY_BITS,
    PrivateKey,
    SigningKey,
    generate_private_key,
    private_key_from_bytes,
    private_key_to_bytes,
    public_jwk,
)

CLAIMS = {"iss": "https://issuer.example", "sub": "svc", "exp": 4_000_000_000}

# RFC 7638 §3.2: the required members of each key type, in this order.
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
THUMBPRINT_MEMBERS["OKP"] = ("crv", "kty", "x")

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


@cache
def _private_key(kind: str) -> PrivateKey:
    # RS256 and PS256 share one RSA key: generating 3072-bit keys is slow.
    return generate_private_key({"RSA": "RS256"}.get(kind, kind))


def _key_for(alg: str) -> PrivateKey:
    return _private_key("RSA" if alg in ("RS256", "PS256") else alg)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _thumbprint(jwk: dict[str, Any]) -> str:
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":")).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


ALGS = [
    pytest.param("ES256", "EC", id="ES256"),
    pytest.param("RS256", "RSA", id="RS256"),
    pytest.param("PS256", "RSA", id="PS256"),
    pytest.param("EdDSA", "OKP", id="EdDSA"),
]
ALG_NAMES = ["ES256", "RS256", "PS256", "EdDSA"]


@pytest.mark.parametrize(("alg", "kty"), ALGS)
def test_public_jwk_has_thumbprint_kid_and_no_private_members(
    alg: str, kty: str
) -> None:
    jwk = public_jwk(_key_for(alg), alg)

    assert jwk["kty"] == kty
    assert (jwk["alg"], jwk["use"]) == (alg, "sig")
    assert jwk["kid"] == _thumbprint(jwk)
    assert PRIVATE_MEMBERS.isdisjoint(jwk)


@pytest.mark.parametrize("alg", ALG_NAMES)
def test_signed_jwt_verifies_against_the_public_jwk(alg: str) -> None:
    jwk = public_jwk(_key_for(alg), alg)
    key = SigningKey(jwk["kid"], alg, _key_for(alg), activates_at=0)

    token = key.sign_jwt(CLAIMS)

    verifying_key = jwt.PyJWK(jwk).key
    assert jwt.get_unverified_header(token) == {
        "alg": alg,
        "typ": "at+jwt",
        "kid": jwk["kid"],
    }
    assert jwt.decode(token, verifying_key, algorithms=[alg]) == CLAIMS


@pytest.mark.parametrize("alg", ALG_NAMES)
def test_a_tampered_jwt_does_not_verify(alg: str) -> None:
    jwk = public_jwk(_key_for(alg), alg)
    key = SigningKey(jwk["kid"], alg, _key_for(alg), activates_at=0)
    header, _, signature = key.sign_jwt(CLAIMS).split(".")
    forged = key.sign_jwt({**CLAIMS, "sub": "admin"}).split(".")[1]

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            f"{header}.{forged}.{signature}", jwt.PyJWK(jwk).key, algorithms=[alg]
        )


@pytest.mark.parametrize(
    ("alg", "length"),
    [
        pytest.param("ES256", 64, id="ES256 is raw R || S"),
        pytest.param("EdDSA", 64, id="EdDSA"),
        pytest.param("RS256", RSA_KEY_BITS // 8, id="RS256"),
        pytest.param("PS256", RSA_KEY_BITS // 8, id="PS256"),
    ],
)
def test_signature_length(alg: str, length: int) -> None:
    key = SigningKey("kid", alg, _key_for(alg), activates_at=0)

    signature = _b64decode(key.sign_jwt(CLAIMS).split(".")[2])

    assert len(signature) == length


@pytest.mark.parametrize("alg", ALG_NAMES)
def test_private_key_survives_der_round_trip(alg: str) -> None:
    original = _key_for(alg)

    restored = private_key_from_bytes(private_key_to_bytes(original))

    assert public_jwk(restored, alg) == public_jwk(original, alg)


def test_unknown_alg_is_refused() -> None:
    with pytest.raises(ValueError, match="^unsupported signing algorithm 'HS256'$"):
        generate_private_key("HS256")
