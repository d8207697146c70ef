"""Fixtures for ``tessera.verify``: signing keys, a token minter, a clock, and
a stand-in issuer served by uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tessera.verify import InvalidToken, Verifier

ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"
NOW = 1_800_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class SigningKey:
    """A private key, the algorithm it signs with, and its public JWK."""

    alg: str
    kid: str
    private: Any
    jwk: dict[str, Any]

    def sign(self, data: bytes, alg: str | None = None) -> bytes:
        alg = alg or self.alg
        if alg == "ES256":
            der = self.private.sign(data, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            return r.to_bytes(32) + s.to_bytes(32)
        if alg == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if alg == "PS256":
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
            return self.private.sign(data, pss, hashes.SHA256())
        if alg == "EdDSA":
            return self.private.sign(data)
        raise ValueError(alg)


Keys = dict[str, SigningKey]


def make_key(alg: str, kid: str, *, rsa_bits: int = 2048) -> SigningKey:
    jwk: dict[str, Any]
    if alg == "ES256":
        private: Any = ec.generate_private_key(ec.SECP256R1())
        numbers = private.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32)),
            "y": b64url(numbers.y.to_bytes(32)),
        }
    elif alg in ("RS256", "PS256"):
        private = rsa.generate_private_key(65537, rsa_bits)
        numbers = private.public_key().public_numbers()
        size = (numbers.n.bit_length() + 7) // 8
        jwk = {"kty": "RSA", "n": b64url(numbers.n.to_bytes(size)), "e": "AQAB"}
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        jwk = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(private.public_key().public_bytes_raw()),
        }
    else:
        raise ValueError(alg)
    return SigningKey(alg, kid, private, {**jwk, "kid": kid, "alg": alg, "use": "sig"})


@dataclass(frozen=True)
class Case:
    """A token built from the session's keys, and why it must be refused."""

    id: str
    build: Callable[[Keys], str]
    detail: str

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


async def check_refused(verifier: Verifier, token: str, detail: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)

    assert caught.value.detail == detail
    assert caught.value.error == "invalid_token"
    assert caught.value.status == 401
    assert caught.value.description == "The access token is invalid."


def claims(now: int = NOW, **changes: Any) -> dict[str, Any]:
    """Valid RFC 9068 claims at ``now``; a change to ``...`` removes a claim."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": "jti-0001",
        "client_id": "client-7",
        "scope": "demo.read demo.write",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


def mint(
    key: SigningKey,
    payload: dict[str, Any] | bytes | None = None,
    *,
    header: bytes | None = None,
    sign_alg: str | None = None,
    **header_changes: Any,
) -> str:
    """A token signed by ``key`` with ``sign_alg`` (the key's own by default).

    The header is ``alg``, ``typ`` and ``kid`` with ``header_changes`` applied,
    a change to ``...`` removing a member, unless ``header`` gives raw bytes.
    A raw ``payload`` is signed as it is.
    """
    if header is None:
        members = {"alg": sign_alg or key.alg, "typ": "at+jwt", "kid": key.kid}
        members.update(header_changes)
        header_segment = encode_json(
            {name: value for name, value in members.items() if value is not ...}
        )
    else:
        header_segment = b64url(header)
    if payload is None:
        payload = claims()
    payload_segment = (
        b64url(payload) if isinstance(payload, bytes) else encode_json(payload)
    )
    signing_input = f"{header_segment}.{payload_segment}"
    signature = key.sign(signing_input.encode(), sign_alg)
    return f"{signing_input}.{b64url(signature)}"


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    """The issuer's keys, one per algorithm, and an attacker's keys."""
    return {
        "ES256": make_key("ES256", "es-1"),
        "RS256": make_key("RS256", "rs-1"),
        "PS256": make_key("PS256", "ps-1"),
        "EdDSA": make_key("EdDSA", "ed-1"),
        "attacker-ES256": make_key("ES256", "es-1"),
        "attacker-RS256": make_key("RS256", "rs-1"),
    }


@pytest.fixture(scope="session")
def jwks(keys: dict[str, SigningKey]) -> dict[str, Any]:
    return {"keys": [keys[alg].jwk for alg in ("ES256", "RS256", "PS256", "EdDSA")]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(jwks: dict[str, Any], clock: FakeClock) -> Verifier:
    return Verifier.from_jwks(ISSUER, AUDIENCE, jwks, clock=clock)


# The stand-in issuer ------------------------------------------------------


@dataclass
class IssuerState:
    """What the stand-in issuer serves; tests change it between requests."""

    base: str
    keys: list[SigningKey] = field(default_factory=list)
    metadata_issuer: str | None = None
    jwks_uri: str | None = None
    oauth_metadata: bool = True
    openid_metadata: bool = True
    cache_control: str | None = "public, max-age=300"
    jwks_status: int = 200
    jwks_body: bytes | None = None
    jwks_delay: float = 0.0
    active: Any = True
    introspection_status: int = 200
    hits: Counter[str] = field(default_factory=Counter)
    introspection_requests: list[dict[str, Any]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.metadata_issuer or self.base,
            "jwks_uri": self.jwks_uri or f"{self.base}/oauth2/jwks",
            "token_endpoint": f"{self.base}/oauth2/token",
            "introspection_endpoint": f"{self.base}/oauth2/introspect",
            "revocation_endpoint": f"{self.base}/oauth2/revoke",
        }


def issuer_app(state_box: list[IssuerState]) -> Starlette:
    async def oauth_metadata(request: Request) -> Response:
        state = state_box[0]
        state.hits["oauth-metadata"] += 1
        if not state.oauth_metadata:
            return Response(status_code=404)
        return JSONResponse(state.metadata())

    async def openid_metadata(request: Request) -> Response:
        state = state_box[0]
        state.hits["openid-metadata"] += 1
        if not state.openid_metadata:
            return Response(status_code=404)
        return JSONResponse(state.metadata())

    async def jwks(request: Request) -> Response:
        state = state_box[0]
        state.hits["jwks"] += 1
        if state.jwks_delay:
            await asyncio.sleep(state.jwks_delay)
        body = state.jwks_body
        if body is None:
            body = json.dumps({"keys": [key.jwk for key in state.keys]}).encode()
        headers = {}
        if state.cache_control is not None:
            headers["Cache-Control"] = state.cache_control
        return Response(body, state.jwks_status, headers, media_type="application/json")

    async def attacker_jwks(request: Request) -> Response:
        state_box[0].hits["attacker"] += 1
        return JSONResponse({"keys": []})

    async def introspect(request: Request) -> Response:
        state = state_box[0]
        state.hits["introspect"] += 1
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        state.introspection_requests.append(
            {
                "authorization": request.headers.get("authorization"),
                "content_type": request.headers.get("content-type"),
                "form": dict(form),
            }
        )
        if state.introspection_status != 200:
            return Response(status_code=state.introspection_status)
        if state.active is True:
            return JSONResponse({"active": True, "client_id": "client-7"})
        return JSONResponse({"active": state.active})

    return Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", oauth_metadata),
            Route("/.well-known/openid-configuration", openid_metadata),
            Route("/oauth2/jwks", jwks),
            Route("/attacker/jwks", attacker_jwks),
            Route("/oauth2/introspect", introspect, methods=["POST"]),
        ]
    )


@dataclass
class IssuerServer:
    base: str
    state_box: list[IssuerState]


@pytest.fixture(scope="session")
def issuer_server() -> Iterator[IssuerServer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    state_box = [IssuerState(base)]
    config = uvicorn.Config(
        issuer_app(state_box),
        lifespan="off",
        loop="asyncio",
        http="h11",
        ws="none",
        log_level="error",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("stand-in issuer did not start")
        time.sleep(0.01)
    try:
        yield IssuerServer(base, state_box)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def issuer(issuer_server: IssuerServer, keys: dict[str, SigningKey]) -> IssuerState:
    """A fresh stand-in issuer state, serving the ES256 and RS256 keys."""
    state = IssuerState(issuer_server.base, keys=[keys["ES256"], keys["RS256"]])
    issuer_server.state_box[0] = state
    return state


@pytest.fixture
async def discovering(issuer: IssuerState, clock: FakeClock) -> AsyncIterator[Verifier]:
    """A verifier that discovers the stand-in issuer's keys."""
    verifier = Verifier(issuer.base, AUDIENCE, clock=clock)
    try:
        yield verifier
    finally:
        await verifier.aclose()


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
