"""One signing key: generate it, serialise it for sealing, publish its JWK,
and sign a JWS signing input on the issuance hot path."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, OKPKey, RSAKey

ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105
RSA_KEY_BITS = 3072

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def generate_private_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def private_key_to_bytes(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_bytes(der: bytes) -> PrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, PrivateKey):
        raise ValueError("unsupported private key type")
    return key


def public_jwk(key: PrivateKey, alg: str) -> dict[str, Any]:
    """The public JWK (RFC 7517), with the RFC 7638 thumbprint as ``kid``."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        jwk: ECKey | RSAKey | OKPKey = ECKey.import_key(key)
    elif isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAKey.import_key(key)
    else:
        jwk = OKPKey.import_key(key)
    public = jwk.as_dict(private=False)
    public.update(kid=jwk.thumbprint(), alg=alg, use="sig")
    return public


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_PSS_SHA256 = padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256.digest_size)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKey
    activates_at: int
    # The encoded JWS header, computed once per key rather than per token.
    encoded_header: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoded_header", self._header(ACCESS_TOKEN_TYP))

    def _header(self, typ: str) -> bytes:
        header = {"alg": self.alg, "typ": typ, "kid": self.kid}
        return _b64(json.dumps(header, separators=(",", ":")).encode())

    def sign_jwt(self, claims: dict[str, Any], typ: str = ACCESS_TOKEN_TYP) -> str:
        """A compact JWS of ``claims``. The default ``typ`` is an access
        token's (RFC 9068 §2.1), whose header is encoded once per key; any
        other (``JWT`` for an ID token) is encoded per call, so that no ID
        token can ever pass for an access token."""
        header = self.encoded_header if typ == ACCESS_TOKEN_TYP else self._header(typ)
        payload = _b64(orjson.dumps(claims))
        signing_input = header + b"." + payload
        return (signing_input + b"." + _b64(self._sign(signing_input))).decode()

    def _sign(self, data: bytes) -> bytes:
        key = self.private_key
        if self.alg == "ES256":
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            r, s = decode_dss_signature(key.sign(data, _ECDSA_SHA256))
            # RFC 7518 §3.4: the JWS form is R || S, 32 bytes each.
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.alg == "RS256":
            assert isinstance(key, rsa.RSAPrivateKey)
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "PS256":
            assert isinstance(key, rsa.RSAPrivateKey)
            return key.sign(data, _PSS_SHA256, hashes.SHA256())
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key.sign(data)
