"""How fast ``tessera.verify`` checks an access token, next to the limit.

Run from the repository root (about 30 seconds):

    PYTHONPATH=src .venv/bin/python bench/bench_verify.py

Options: ``--quick`` for a rough run in a few seconds, ``--batch N`` and
``--rounds N`` to trade time for stability.

For each algorithm (ES256, RS256, EdDSA) one token is signed with one key and
checked in four ways:

    raw        cryptography's public_key.verify on the token's signing input
               and signature, with the signature already in the form it needs:
               the limit, no parsing and no claim checks at all
    tessera    Verifier.from_jwks(...).verify(token, ["demo.read"]), awaited
    joserfc    jwt.decode with a KeySet, JWTClaimsRegistry, typ and scope
    pyjwt      jwt.decode_complete with a PyJWK key, typ and scope

The last three make the same checks: alg allow-list, signature, typ, iss,
aud, exp/nbf/iat with 30 s leeway, required claims and a scope; tessera and
joserfc also pick the key by kid from a key set, pyjwt is handed the key.

Each checker runs in short batches, the batches of all checkers interleaved
so that a noisy neighbour slows them alike, and the fastest batch counts: on
a shared machine the minimum is the stable statistic. The table gives
verifications per second and the ratio to ``raw``; the last line is the same
data as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import cryptography
import joserfc
import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet

from tessera.verify import Verifier

ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"
LEEWAY = 30
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(alg: str) -> tuple[Any, dict[str, Any]]:
    """A private key and the public JWK of it."""
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64(numbers.x.to_bytes(32)),
            "y": b64(numbers.y.to_bytes(32)),
        }
    elif alg == "RS256":
        key = rsa.generate_private_key(65537, 2048)
        numbers = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": b64(numbers.n.to_bytes(256)), "e": "AQAB"}
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes_raw()
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    return key, {**jwk, "kid": f"{alg.lower()}-1", "alg": alg, "use": "sig"}


def sign(alg: str, key: Any, data: bytes) -> bytes:
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32) + s.to_bytes(32)
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def mint(alg: str, key: Any, kid: str) -> str:
    now = int(time.time())
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    claims = {
        "iss": ISSUER,
        "sub": "user-5f3a9c",
        "aud": AUDIENCE,
        "exp": now + 3600,
        "iat": now,
        "jti": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "client_id": "demo-client",
        "scope": "demo.read demo.write",
    }
    segments = [b64(json.dumps(part).encode()) for part in (header, claims)]
    signing_input = ".".join(segments)
    return signing_input + "." + b64(sign(alg, key, signing_input.encode()))


def raw_checker(alg: str, key: Any, token: str) -> Callable[[], None]:
    signing_input, _, signature_b64 = token.rpartition(".")
    data = signing_input.encode()
    signature = base64.urlsafe_b64decode(signature_b64 + "==")
    public_key = key.public_key()
    if alg == "ES256":
        der = encode_dss_signature(
            int.from_bytes(signature[:32]), int.from_bytes(signature[32:])
        )
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda: public_key.verify(der, data, ecdsa)
    if alg == "RS256":
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda: public_key.verify(signature, data, pkcs1, sha256)
    return lambda: public_key.verify(signature, data)


def tessera_checker(alg: str, jwk: dict[str, Any]) -> Verifier:
    return Verifier.from_jwks(
        ISSUER, AUDIENCE, {"keys": [jwk]}, algorithms=[alg], leeway=LEEWAY
    )


def joserfc_checker(alg: str, jwk: dict[str, Any], token: str) -> Callable[[], None]:
    key_set = KeySet.import_key_set({"keys": [jwk]})
    registry = jose_jwt.JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )

    def check() -> None:
        decoded = jose_jwt.decode(token, key_set, algorithms=[alg])
        if decoded.header.get("typ", "").lower() not in ACCESS_TOKEN_TYPES:
            raise ValueError("typ")
        registry.validate(decoded.claims)
        if "demo.read" not in decoded.claims.get("scope", "").split():
            raise ValueError("scope")

    return check


def pyjwt_checker(alg: str, jwk: dict[str, Any], token: str) -> Callable[[], None]:
    key = pyjwt.PyJWK(jwk).key
    required = ["exp", "iat", "iss", "aud", "sub", "jti"]

    def check() -> None:
        decoded = pyjwt.decode_complete(
            token,
            key,
            algorithms=[alg],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": required},
        )
        if decoded["header"].get("typ", "").lower() not in ACCESS_TOKEN_TYPES:
            raise ValueError("typ")
        claims = decoded["payload"]
        if not isinstance(claims.get("client_id"), str):
            raise ValueError("client_id")
        if "demo.read" not in claims.get("scope", "").split():
            raise ValueError("scope")

    return check


async def time_sync(check: Callable[[], None], batch: int) -> float:
    start = time.perf_counter()
    for _ in range(batch):
        check()
    return (time.perf_counter() - start) / batch


async def time_verifier(verifier: Verifier, token: str, batch: int) -> float:
    verify = verifier.verify
    scopes = ("demo.read",)
    start = time.perf_counter()
    for _ in range(batch):
        await verify(token, scopes)
    return (time.perf_counter() - start) / batch


async def measure(alg: str, batch: int, rounds: int) -> dict[str, float]:
    key, jwk = make_key(alg)
    token = mint(alg, key, jwk["kid"])
    verifier = tessera_checker(alg, jwk)
    raw = raw_checker(alg, key, token)
    joserfc_check = joserfc_checker(alg, jwk, token)
    pyjwt_check = pyjwt_checker(alg, jwk, token)
    checkers: dict[str, Callable[[], Awaitable[float]]] = {
        "raw": lambda: time_sync(raw, batch),
        "tessera": lambda: time_verifier(verifier, token, batch),
        "joserfc": lambda: time_sync(joserfc_check, batch),
        "pyjwt": lambda: time_sync(pyjwt_check, batch),
    }

    for run in checkers.values():
        await run()  # warm up, and fail early on a token a checker refuses
    best = dict.fromkeys(checkers, float("inf"))
    for _ in range(rounds):
        for name, run in checkers.items():
            best[name] = min(best[name], await run())
    return {name: 1 / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=120)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.rounds = 50, 10
    warnings.simplefilter("ignore", SecurityWarning)  # joserfc on EdDSA

    started = time.perf_counter()
    results = {
        alg: asyncio.run(measure(alg, args.batch, args.rounds))
        for alg in ("ES256", "RS256", "EdDSA")
    }
    elapsed = time.perf_counter() - started

    print(f"{'alg':<7}{'checker':<9}{'verify/s':>10}{'vs raw':>8}")
    for alg, rates in results.items():
        for name, rate in rates.items():
            print(f"{alg:<7}{name:<9}{rate:>10,.0f}{rate / rates['raw']:>8.0%}")
    print(
        json.dumps(
            {
                "bench": "verify",
                "python": platform.python_version(),
                "cryptography": cryptography.__version__,
                "joserfc": joserfc.__version__,
                "pyjwt": pyjwt.__version__,
                "seconds": round(elapsed, 1),
                "per_second": {
                    alg: {name: round(rate) for name, rate in rates.items()}
                    for alg, rates in results.items()
                },
                "ratio_to_raw": {
                    alg: {
                        name: round(rate / rates["raw"], 3)
                        for name, rate in rates.items()
                    }
                    for alg, rates in results.items()
                },
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
