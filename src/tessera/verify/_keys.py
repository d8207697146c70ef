"""The issuer's JSON Web Key Set, turned once into ready-to-use public keys.

Each JWK (RFC 7517) becomes a ``PublicKey``: a ``cryptography`` key object
wrapped in a function that checks one JWS signature (RFC 7518 §3) and raises
``InvalidSignature`` when it does not hold. Conversion happens when a key set
is loaded, never per token.

A key may only check the algorithms its type allows, narrowed to its own
``alg`` member when it has one, so an RSA key can never check an ES256 or an
HS256 signature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ._jws import decode_base64url

__all__ = ["SUPPORTED_ALGORITHMS", "KeySet", "PublicKey", "load_jwk", "load_jwks"]

SUPPORTED_ALGORITHMS = frozenset({"ES256", "EdDSA", "PS256", "RS256"})

MIN_RSA_BITS = 2048
MAX_KEYS = 100

_log = logging.getLogger("tessera.verify")

Check = Callable[[bytes, bytes], None]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One issuer key for one algorithm.

    ``check(signature, signing_input)`` raises ``InvalidSignature`` unless the
    signature holds.
    """

    kid: str | None
    alg: str
    check: Check


class KeySet:
    """Keys indexed by ``(kid, alg)``, the lookup made for every token.

    A token without ``kid`` finds a key only when exactly one key of the set
    can check its ``alg``.
    """

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self.keys = tuple(keys)
        self.kids = frozenset(key.kid for key in self.keys if key.kid is not None)
        self._index: dict[tuple[str | None, str], PublicKey] = {}

        for key in self.keys:
            if key.kid is not None:
                self._index.setdefault((key.kid, key.alg), key)
        for alg in {key.alg for key in self.keys}:
            candidates = [key for key in self.keys if key.alg == alg]
            if len(candidates) == 1:
                self._index[None, alg] = candidates[0]

    def find(self, kid: str | None, alg: str) -> PublicKey | None:
        return self._index.get((kid, alg))


def load_jwks(document: object, algorithms: frozenset[str]) -> KeySet:
    """Read a JWK Set; keys that cannot be used are skipped, not fatal."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    entries = document["keys"]
    if len(entries) > MAX_KEYS:
        raise ValueError(f"more than {MAX_KEYS} keys")

    keys: list[PublicKey] = []
    for entry in entries:
        try:
            keys.extend(load_jwk(entry, algorithms))
        except (ValueError, TypeError) as exc:
            _log.debug("skipping JWK: %s", exc)
    if not keys:
        raise ValueError("no usable signing key")
    return KeySet(keys)


def load_jwk(jwk: object, algorithms: frozenset[str]) -> list[PublicKey]:
    """Convert one JWK into a key per algorithm it may check.

    The list is empty for a key that is not for signatures or whose
    algorithms are all outside ``algorithms``.
    """
    if not isinstance(jwk, Mapping):
        raise ValueError("JWK is not an object")
    if jwk.get("use", "sig") != "sig":
        return []
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (
        not isinstance(key_ops, list) or "verify" not in key_ops
    ):
        return []

    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")

    kty = jwk.get("kty")
    if kty == "EC":
        checks = _load_ec(jwk)
    elif kty == "RSA":
        checks = _load_rsa(jwk)
    elif kty == "OKP":
        checks = _load_okp(jwk)
    else:
        raise ValueError(f"unsupported kty {kty!r}")

    alg = jwk.get("alg")
    if alg is not None and alg not in checks:
        raise ValueError(f"alg {alg!r} does not fit kty {kty!r}")
    return [
        PublicKey(kid, name, check)
        for name, check in checks.items()
        if name in algorithms and alg in (None, name)
    ]


def _integer(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"JWK member {name!r} missing")
    return decode_base64url(value)


def _load_ec(jwk: Mapping[str, Any]) -> dict[str, Check]:
    if jwk.get("crv") != "P-256":
        raise ValueError("EC key is not on P-256")
    x, y = _integer(jwk, "x"), _integer(jwk, "y")
    if len(x) != 32 or len(y) != 32:
        raise ValueError("EC coordinates are not 32 bytes")
    # from_encoded_point rejects a point that is not on the curve.
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    return {"ES256": _es256(key)}


def _load_rsa(jwk: Mapping[str, Any]) -> dict[str, Check]:
    n = int.from_bytes(_integer(jwk, "n"))
    e = int.from_bytes(_integer(jwk, "e"))
    if n.bit_length() < MIN_RSA_BITS:
        raise ValueError(f"RSA key shorter than {MIN_RSA_BITS} bits")
    key = rsa.RSAPublicNumbers(e, n).public_key()
    return {"RS256": _rs256(key), "PS256": _ps256(key)}


def _load_okp(jwk: Mapping[str, Any]) -> dict[str, Check]:
    if jwk.get("crv") != "Ed25519":
        raise ValueError("OKP key is not Ed25519")
    key = ed25519.Ed25519PublicKey.from_public_bytes(_integer(jwk, "x"))
    return {"EdDSA": key.verify}


def _es256(key: ec.EllipticCurvePublicKey) -> Check:
    verify = key.verify
    ecdsa = ec.ECDSA(hashes.SHA256())

    def check(signature: bytes, signing_input: bytes) -> None:
        # RFC 7518 §3.4: R and S as two 32-byte big-endian integers.
        if len(signature) != 64:
            raise InvalidSignature
        r = int.from_bytes(signature[:32])
        s = int.from_bytes(signature[32:])
        verify(encode_dss_signature(r, s), signing_input, ecdsa)

    return check


def _rs256(key: rsa.RSAPublicKey) -> Check:
    verify = key.verify
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def check(signature: bytes, signing_input: bytes) -> None:
        verify(signature, signing_input, pkcs1, sha256)

    return check


def _ps256(key: rsa.RSAPublicKey) -> Check:
    verify = key.verify
    sha256 = hashes.SHA256()
    # RFC 7518 §3.5: the salt is as long as the hash output.
    pss = padding.PSS(
        mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH
    )

    def check(signature: bytes, signing_input: bytes) -> None:
        verify(signature, signing_input, pss, sha256)

    return check
