"""Key pairs for the private_key_jwt tests: the client's private key, to sign
assertions with, and its public JWK, to register."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class KeyPair:
    alg: str
    kid: str | None
    private_key: Any
    # The public JWK, as a client registers it.
    jwk: dict[str, Any]

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """An assertion signed with this key; ``kid`` is set unless the key
        has none or ``header`` overrides it."""
        headers = {"kid": self.kid, **header} if self.kid else header
        # The JWS layer: PyJWT's JWT layer would refuse the malformed claims
        # that the tests need to send.
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jwt.PyJWS().encode(
            payload, self.private_key, algorithm=self.alg, headers=headers
        )

    def public_pem(self) -> bytes:
        return bytes(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )


@functools.cache
def _private_key(alg: str, number: int) -> Any:
    # Cached per (alg, number): an RSA key takes a while to make.
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


def make_key(alg: str = "ES256", kid: str | None = "k1", number: int = 0) -> KeyPair:
    """Key ``number`` for ``alg``: the same numbers give the same key."""
    private_key = _private_key(alg, number)
    convert = {
        "ES256": ECAlgorithm,
        "RS256": RSAAlgorithm,
        "PS256": RSAAlgorithm,
        "EdDSA": OKPAlgorithm,
    }[alg]
    jwk: dict[str, Any] = convert.to_jwk(private_key.public_key(), as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    return KeyPair(alg, kid, private_key, jwk)


def jwks(*pairs: KeyPair) -> dict[str, Any]:
    return {"keys": [pair.jwk for pair in pairs]}


def claims_for(
    client_id: str, audience: str | list[str], now: float, **changes: Any
) -> dict[str, Any]:
    """Claims of a valid assertion: one minute to live, a fresh jti. A
    change to None leaves the claim out."""
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": int(now),
        "exp": int(now) + 60,
        "jti": secrets.token_urlsafe(16),
        **changes,
    }
    return {name: value for name, value in claims.items() if value is not None}


def b64url(data: bytes | dict[str, Any]) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def alg_none(claims: dict[str, Any], signature: bytes = b"") -> str:
    return (
        f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(claims)}.{b64url(signature)}"
    )


def hs256_with(secret: bytes, claims: dict[str, Any], **header: Any) -> str:
    """HS256 keyed with ``secret``: with a public key as the secret, the
    classic algorithm-confusion forgery."""
    signing_input = (
        f"{b64url({'alg': 'HS256', 'typ': 'JWT', **header})}.{b64url(claims)}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"
