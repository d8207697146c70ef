"""Hostile tokens at introspection and revocation: each is simply not an
active token of this issuer, never an error page and never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tessera.keys.signing import SigningKey
from tests.server.helpers import b64url, basic, sign, token_claims, unique
from tests.support import RunningServer


def _unsigned(claims: dict[str, object]) -> str:
    return f"{b64url({'alg': 'none', 'typ': 'at+jwt'})}.{b64url(claims)}."


def _hs256_with_public_key(key: SigningKey, claims: dict[str, object]) -> str:
    # The classic confusion: the public key's PEM used as an HMAC secret.
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url({"alg": "HS256", "typ": "at+jwt", "kid": key.kid})
    signing_input = f"{header}.{b64url(claims)}".encode()
    mac = hmac.new(pem, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(mac)}"


def _attacker_signed(claims: dict[str, object], kid: str = "attacker") -> str:
    # Signed by the attacker's key, which the jku and jwk headers point at;
    # only the issuer's own published keys count.
    attacker = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key()))
    headers = {
        "kid": kid,
        "typ": "at+jwt",
        "jku": "https://attacker.example/jwks",
        "jwk": public,
    }
    return jwt.encode(claims, attacker, algorithm="ES256", headers=headers)


def _nested(depth: int) -> str:
    deep = base64.urlsafe_b64encode(b"[" * depth).rstrip(b"=").decode()
    return f"{deep}.e30.AAAA"


CASES = {
    "alg-none": lambda key, claims: _unsigned(claims),
    "hs256-with-public-key": _hs256_with_public_key,
    "attacker-key-named-by-jku-and-jwk": lambda key, claims: _attacker_signed(claims),
    "attacker-key-under-our-kid": lambda key, claims: _attacker_signed(claims, key.kid),
    "wrong-typ": lambda key, claims: sign(key, claims, typ="JWT"),
    "other-issuer": lambda key, claims: sign(key, {**claims, "iss": "https://evil"}),
    "expired": lambda key, claims: sign(key, {**claims, "exp": 1}),
    "deeply-nested-header": lambda key, claims: _nested(5000),
    "oversized": lambda key, claims: "e" * 9000,
    "two-segments": lambda key, claims: "eyJhbGciOiJFUzI1NiJ9.e30",
    "bad-base64": lambda key, claims: "!!!.???.***",
    "exp-as-string": lambda key, claims: sign(key, {**claims, "exp": "9999999999"}),
}


@pytest.fixture(scope="module")
def owner(server: RunningServer) -> tuple[str, str]:
    client_id = unique("hostile")
    return client_id, server.create_client(client_id)


@pytest.mark.parametrize("case", sorted(CASES))
def test_introspection_says_inactive(
    server: RunningServer,
    http: httpx.Client,
    server_key: SigningKey,
    owner: tuple[str, str],
    case: str,
) -> None:
    token = CASES[case](server_key, token_claims(server, owner[0]))

    response = http.post(
        "/oauth2/introspect",
        data={"token": token},
        headers={"Authorization": basic(*owner)},
    )

    assert response.status_code == 200
    assert response.content == b'{"active":false}'
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("case", sorted(CASES))
def test_revocation_accepts_and_ignores(
    server: RunningServer,
    http: httpx.Client,
    server_key: SigningKey,
    owner: tuple[str, str],
    case: str,
) -> None:
    token = CASES[case](server_key, token_claims(server, owner[0]))

    response = http.post(
        "/oauth2/revoke",
        data={"token": token},
        headers={"Authorization": basic(*owner)},
    )

    # RFC 7009 §2.2: an invalid token is not an error.
    assert response.status_code == 200
    assert response.content == b""


def test_a_genuine_token_is_active_as_a_control(
    server: RunningServer,
    http: httpx.Client,
    server_key: SigningKey,
    owner: tuple[str, str],
) -> None:
    token = sign(server_key, token_claims(server, owner[0]))

    response = http.post(
        "/oauth2/introspect",
        data={"token": token},
        headers={"Authorization": basic(*owner)},
    )

    assert response.json()["active"] is True
    assert jwt.get_unverified_header(token)["kid"] == server_key.kid
    assert json.loads(response.content)["client_id"] == owner[0]
