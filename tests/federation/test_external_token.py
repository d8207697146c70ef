"""External JWTs checked against a real issuer served on a loopback port.

The issuer is a small ``http.server`` in a thread: it publishes OIDC
discovery and a JWK Set whose behaviour each test sets (healthy, failing,
slow, garbage, rotated keys), and counts the requests it answers. Tokens are
signed with joserfc; the hostile ones are put together by hand.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import threading
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

import tessera.federation
import tessera.verify._discovery
from tessera.core.errors import InvalidGrant, TemporarilyUnavailable
from tessera.federation import ExternalIssuers, external_token, peek_issuer

NOW = 1_800_000_000
LEEWAY = 60
REFRESH = 30
FETCH_TIMEOUT = 0.5
PINNED_ISSUER = "https://kubernetes.default.svc.cluster.local"

Key = RSAKey | ECKey | OKPKey


# Keys, tokens and a clock ----------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(alg: str, kid: str) -> Key:
    parameters = {"kid": kid}
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, parameters=parameters)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters)
    return OKPKey.generate_key("Ed25519", parameters=parameters)


def public(*keys: Key) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def claims(issuer: str, now: float = NOW, **changes: Any) -> dict[str, Any]:
    """Claims of a CI token at ``now``; a change to ``...`` removes a claim."""
    base: dict[str, Any] = {
        "iss": issuer,
        "sub": "repo:acme/app:ref:refs/heads/main",
        "aud": "https://tessera.example",
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 300,
        "repository": "acme/app",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


def sign(key: Key, payload: dict[str, Any], alg: str, **header: Any) -> str:
    """A token signed by ``key``; ``typ`` is "JWT" and ``kid`` the key's own
    unless ``header`` changes them, a change to ``...`` removing a member."""
    members = {"alg": alg, "typ": "JWT", "kid": key.kid, **header}
    members = {name: value for name, value in members.items() if value is not ...}
    with warnings.catch_warnings():
        # joserfc flags "EdDSA" as superseded by RFC 9864's "Ed25519"; the
        # issuers Tessera federates with still send "EdDSA".
        warnings.simplefilter("ignore", SecurityWarning)
        return jws.serialize_compact(
            members, json.dumps(payload).encode(), key, algorithms=[alg]
        )


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    """A token joserfc would refuse to make."""
    return f"{segment(header)}.{segment(payload)}.{b64url(signature)}"


def with_payload(payload: bytes) -> str:
    """A token of three base64url segments around ``payload``, as raw bytes."""
    return f"e30.{b64url(payload)}.c2ln"


def self_signed_x5c(key: RSAKey) -> list[str]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key)
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=36500))
        .sign(key.private_key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return [base64.b64encode(der).decode()]


def count_conversions(monkeypatch: pytest.MonkeyPatch, module: Any) -> Counter[str]:
    """Count the JWK Sets ``module`` turns into keys."""
    conversions = Counter[str]()
    load_jwks = module.load_jwks

    def counting_load_jwks(*args: Any) -> Any:
        conversions["jwks"] += 1
        return load_jwks(*args)

    monkeypatch.setattr(module, "load_jwks", counting_load_jwks)
    return conversions


class FakeClock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """The issuer's keys, one per algorithm, and an attacker's."""
    return {
        "RS256": new_key("RS256", "rs-1"),
        "PS256": new_key("PS256", "ps-1"),
        "ES256": new_key("ES256", "es-1"),
        "EdDSA": new_key("EdDSA", "ed-1"),
        "attacker": new_key("RS256", "attacker-1"),
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# The issuer ------------------------------------------------------------------


@dataclass
class IssuerState:
    """What the issuer serves; tests change it between requests."""

    base: str
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    jwks_mode: str = "ok"  # "ok", "down", "slow" or "garbage"
    cache_control: str = "max-age=300"
    attacker_jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    hits: Counter[str] = field(default_factory=Counter)
    release: threading.Event = field(default_factory=threading.Event)


class IssuerHandler(BaseHTTPRequestHandler):
    server: IssuerServer

    def do_GET(self) -> None:
        state = self.server.state
        if self.path == "/.well-known/openid-configuration":
            state.hits["discovery"] += 1
            metadata = {"issuer": state.base, "jwks_uri": f"{state.base}/jwks"}
            self.reply(200, json.dumps(metadata).encode())
        elif self.path == "/jwks":
            state.hits["jwks"] += 1
            self.reply_jwks(state)
        elif self.path.startswith("/attacker/"):
            state.hits["attacker"] += 1
            self.reply(200, json.dumps(state.attacker_jwks).encode())
        else:
            self.reply(404, b"{}")

    def reply_jwks(self, state: IssuerState) -> None:
        if state.jwks_mode == "down":
            self.reply(500, b"")
        elif state.jwks_mode == "garbage":
            self.reply(200, b"<html>maintenance</html>")
        else:
            if state.jwks_mode == "slow":
                state.release.wait(10 * FETCH_TIMEOUT)
            body = json.dumps(state.jwks).encode()
            self.reply(200, body, {"Cache-Control": state.cache_control})

    def reply(
        self, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class IssuerServer(ThreadingHTTPServer):
    daemon_threads = True
    state: IssuerState

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A slow reply finds its client gone; that is the point of the test.
        pass


@pytest.fixture(scope="module")
def issuer_server() -> Iterator[IssuerServer]:
    server = IssuerServer(("127.0.0.1", 0), IssuerHandler)
    server.state = IssuerState(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def issuer(issuer_server: IssuerServer, keys: dict[str, Key]) -> Iterator[IssuerState]:
    """A fresh issuer state publishing the RS256, ES256 and EdDSA keys."""
    base = f"http://127.0.0.1:{issuer_server.server_address[1]}"
    state = IssuerState(base, public(keys["RS256"], keys["ES256"], keys["EdDSA"]))
    issuer_server.state = state
    yield state
    state.release.set()


@pytest.fixture
async def external(clock: FakeClock) -> AsyncIterator[ExternalIssuers]:
    async with ExternalIssuers(
        clock,
        refresh_interval=REFRESH,
        leeway=LEEWAY,
        fetch_timeout=FETCH_TIMEOUT,
    ) as issuers:
        yield issuers


async def refused(
    external: ExternalIssuers, token: str, issuer: str, detail: str, **options: Any
) -> None:
    with pytest.raises(InvalidGrant) as caught:
        await external.verify(token, issuer, **options)

    assert type(caught.value) is InvalidGrant
    assert caught.value.error == "invalid_grant"
    assert caught.value.status == 400
    assert caught.value.detail == detail
    assert token not in str(caught.value) + caught.value.detail


async def unavailable(
    external: ExternalIssuers, token: str, issuer: str, detail: str
) -> None:
    with pytest.raises(TemporarilyUnavailable) as caught:
        await external.verify(token, issuer)

    assert caught.value.error == "temporarily_unavailable"
    assert caught.value.status == 503
    assert caught.value.detail == detail


# Good tokens -----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_accepts_token_signed_by_issuer_key(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    alg: str,
) -> None:
    issuer.jwks = public(keys[alg])
    payload = claims(issuer.base)

    verified = await external.verify(sign(keys[alg], payload, alg), issuer.base)

    assert verified == payload
    assert type(verified) is dict


@pytest.mark.parametrize(
    "typ",
    [
        pytest.param("JWT", id="github-gitlab"),
        pytest.param("jwt", id="lower-case"),
        pytest.param("application/jwt", id="media-type"),
        pytest.param(..., id="kubernetes-none"),
    ],
)
async def test_accepts_jwt_typ_or_none(
    issuer: IssuerState, external: ExternalIssuers, keys: dict[str, Key], typ: Any
) -> None:
    token = sign(keys["ES256"], claims(issuer.base), "ES256", typ=typ)

    assert (await external.verify(token, issuer.base))["iss"] == issuer.base


async def test_keys_fetched_and_converted_once(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conversions = count_conversions(monkeypatch, tessera.verify._discovery)

    for alg in ("RS256", "ES256", "EdDSA", "RS256"):
        token = sign(keys[alg], claims(issuer.base), alg)
        await external.verify(token, issuer.base)

    assert issuer.hits == {"discovery": 1, "jwks": 1}
    assert conversions == {"jwks": 1}


# Time and claims -------------------------------------------------------------

CLAIM_CASES = [
    pytest.param({"exp": NOW - LEEWAY - 1}, "external token expired", id="expired"),
    pytest.param({"exp": NOW - LEEWAY}, "external token expired", id="exp-at-leeway"),
    pytest.param(
        {"nbf": NOW + LEEWAY + 1}, "external token not yet valid", id="nbf-future"
    ),
    pytest.param(
        {"iat": NOW + LEEWAY + 1},
        "external token issued in the future",
        id="iat-future",
    ),
    pytest.param({"exp": ...}, "exp missing or not a number", id="exp-missing"),
    pytest.param({"exp": "2099"}, "exp missing or not a number", id="exp-string"),
    pytest.param({"exp": True}, "exp missing or not a number", id="exp-bool"),
    pytest.param({"nbf": "0"}, "nbf not a number", id="nbf-string"),
    pytest.param({"iat": None}, "iat not a number", id="iat-null"),
    pytest.param({"sub": ...}, "sub missing or not a string", id="sub-missing"),
    pytest.param({"sub": ""}, "sub missing or not a string", id="sub-empty"),
    pytest.param({"sub": 42}, "sub missing or not a string", id="sub-number"),
    pytest.param({"iss": "https://evil.example"}, "wrong issuer", id="iss-other"),
    pytest.param({"iss": PINNED_ISSUER + "/"}, "wrong issuer", id="iss-slash"),
    pytest.param({"iss": [PINNED_ISSUER]}, "wrong issuer", id="iss-list"),
    pytest.param({"iss": ...}, "wrong issuer", id="iss-missing"),
]


@pytest.mark.parametrize(("changes", "detail"), CLAIM_CASES)
async def test_refuses_claims(
    external: ExternalIssuers, keys: dict[str, Key], changes: Any, detail: str
) -> None:
    token = sign(keys["RS256"], claims(PINNED_ISSUER, **changes), "RS256")

    await refused(
        external, token, PINNED_ISSUER, detail, pinned_jwks=public(keys["RS256"])
    )


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": NOW - LEEWAY + 1}, id="expired-within-leeway"),
        pytest.param({"nbf": NOW + LEEWAY}, id="nbf-within-leeway"),
        pytest.param({"iat": NOW + LEEWAY}, id="iat-within-leeway"),
        pytest.param({"iat": ..., "nbf": ...}, id="no-iat-no-nbf"),
        pytest.param({"aud": "https://elsewhere.example"}, id="aud-left-to-policy"),
    ],
)
async def test_accepts_claims(
    external: ExternalIssuers, keys: dict[str, Key], changes: Any
) -> None:
    payload = claims(PINNED_ISSUER, **changes)
    token = sign(keys["RS256"], payload, "RS256")

    verified = await external.verify(
        token, PINNED_ISSUER, pinned_jwks=public(keys["RS256"])
    )

    assert verified == payload


# Hostile headers -------------------------------------------------------------


async def test_refuses_unsigned_token(
    issuer: IssuerState, external: ExternalIssuers
) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": "rs-1"}
    unsecured = forge(header, claims(issuer.base), b"")
    with_junk = forge(header, claims(issuer.base), b"x")

    await refused(external, unsecured, issuer.base, "token has an empty segment")
    await refused(external, with_junk, issuer.base, "alg 'none' is not allowed")
    assert issuer.hits == {}


async def test_refuses_hs256_keyed_with_issuer_public_key(
    issuer: IssuerState, external: ExternalIssuers, keys: dict[str, Key]
) -> None:
    # The classic confusion: an HMAC whose secret is the published RSA key.
    pem = keys["RS256"].public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "rs-1"}
    signing_input = f"{segment(header)}.{segment(claims(issuer.base))}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(mac)}"

    await refused(external, token, issuer.base, "alg 'HS256' is not allowed")
    assert issuer.hits == {}


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        pytest.param({"typ": "at+jwt"}, "typ 'at+jwt' is not JWT", id="at+jwt"),
        pytest.param(
            {"typ": "application/at+jwt"},
            "typ 'application/at+jwt' is not JWT",
            id="application-at+jwt",
        ),
        pytest.param({"typ": "JOSE"}, "typ 'JOSE' is not JWT", id="jose"),
        pytest.param({"kid": ...}, "kid missing", id="kid-missing"),
    ],
)
async def test_refuses_header(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    header: dict[str, Any],
    detail: str,
) -> None:
    token = sign(keys["ES256"], claims(issuer.base), "ES256", **header)

    await refused(external, token, issuer.base, detail)
    assert issuer.hits == {}


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        pytest.param(
            {"alg": "RS256", "kid": "rs-1", "crit": ["exp"], "exp": 1},
            "crit header present",
            id="crit",
        ),
        pytest.param({"alg": "RS512", "kid": "rs-1"}, "alg 'RS512' is not allowed"),
        pytest.param({"alg": "ES256K", "kid": "es-1"}, "alg 'ES256K' is not allowed"),
        pytest.param({"kid": "rs-1"}, "alg None is not allowed", id="alg-missing"),
        pytest.param(
            {"alg": "RS256", "kid": "rs-1", "typ": None},
            "typ None is not JWT",
            id="typ-null",
        ),
        pytest.param(
            {"alg": "RS256", "kid": 7}, "kid is not a string", id="kid-number"
        ),
    ],
)
async def test_refuses_forged_header(
    issuer: IssuerState,
    external: ExternalIssuers,
    header: dict[str, Any],
    detail: str,
) -> None:
    token = forge({"typ": "JWT", **header}, claims(issuer.base), b"\0" * 256)

    await refused(external, token, issuer.base, detail)


@pytest.mark.parametrize("kid", ["attacker-1", "rs-1"], ids=["own-kid", "issuer-kid"])
async def test_ignores_keys_named_by_the_token(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    kid: str,
) -> None:
    attacker = keys["attacker"]
    issuer.attacker_jwks = public(attacker)
    header = {
        "kid": kid,
        "jku": f"{issuer.base}/attacker/jwks",
        "x5u": f"{issuer.base}/attacker/cert.pem",
        "jwk": attacker.as_dict(private=False),
        "x5c": self_signed_x5c(attacker),
    }
    token = sign(attacker, claims(issuer.base), "RS256", **header)

    # The issuer's kid finds the issuer's key, which the signature fails;
    # the attacker's kid is unknown to the issuer.
    detail = "bad signature" if kid == "rs-1" else "unknown kid 'attacker-1'"
    await refused(external, token, issuer.base, detail)
    assert issuer.hits["attacker"] == 0


async def test_refuses_kid_of_a_key_for_another_alg(
    issuer: IssuerState, external: ExternalIssuers, keys: dict[str, Key]
) -> None:
    token = sign(keys["ES256"], claims(issuer.base), "ES256", kid="rs-1")

    await refused(external, token, issuer.base, "key 'rs-1' is not ES256")
    assert issuer.hits["jwks"] == 1


async def test_refuses_oversized_token_before_decoding(
    issuer: IssuerState, external: ExternalIssuers
) -> None:
    # Not ASCII either, so any decoding would have answered differently.
    token = "é" * 1_000_000

    await refused(external, token, issuer.base, "token longer than 16384 bytes")
    assert issuer.hits == {}


# Rotation and the refetch rate limit -----------------------------------------


async def test_new_key_found_once_refetch_allowed(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    clock: FakeClock,
) -> None:
    await external.verify(
        sign(keys["RS256"], claims(issuer.base), "RS256"), issuer.base
    )
    issuer.jwks = public(keys["RS256"], keys["PS256"])

    # The key set was fetched just now: the new kid waits for the interval.
    new = sign(keys["PS256"], claims(issuer.base), "PS256")
    await refused(external, new, issuer.base, "unknown kid 'ps-1'")
    assert issuer.hits["jwks"] == 1

    clock.advance(REFRESH)
    new = sign(keys["PS256"], claims(issuer.base, clock.now), "PS256")
    assert (await external.verify(new, issuer.base))["sub"]
    assert issuer.hits["jwks"] == 2


@pytest.mark.parametrize("trigger", ["unknown-kid", "cache-expiry"])
async def test_removed_key_refused_after_refetch(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    clock: FakeClock,
    trigger: str,
) -> None:
    await external.verify(
        sign(keys["RS256"], claims(issuer.base), "RS256"), issuer.base
    )
    issuer.jwks = public(keys["ES256"])

    # Until the issuer is asked again, the cached key still counts.
    old = sign(keys["RS256"], claims(issuer.base), "RS256")
    await external.verify(old, issuer.base)

    if trigger == "unknown-kid":
        clock.advance(REFRESH)
        stranger = sign(keys["PS256"], claims(issuer.base, clock.now), "PS256")
        await refused(external, stranger, issuer.base, "unknown kid 'ps-1'")
    else:
        clock.advance(300)
    old = sign(keys["RS256"], claims(issuer.base, clock.now), "RS256")
    await refused(external, old, issuer.base, "unknown kid 'rs-1'")
    assert issuer.hits["jwks"] == 2


async def test_burst_of_unknown_kids_costs_one_fetch_per_interval(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    clock: FakeClock,
) -> None:
    await external.verify(
        sign(keys["ES256"], claims(issuer.base), "ES256"), issuer.base
    )

    async def burst() -> None:
        tokens = [
            sign(keys["attacker"], claims(issuer.base, clock.now), "RS256", kid=kid)
            for kid in (f"forged-{n}" for n in range(20))
        ]
        outcomes = await asyncio.gather(
            *(external.verify(token, issuer.base) for token in tokens),
            return_exceptions=True,
        )
        assert all(type(outcome) is InvalidGrant for outcome in outcomes)

    await burst()
    assert issuer.hits["jwks"] == 1
    clock.advance(REFRESH - 1)
    await burst()
    assert issuer.hits["jwks"] == 1
    clock.advance(1)
    await burst()
    await burst()
    assert issuer.hits["jwks"] == 2


# The issuer's keys unavailable -----------------------------------------------

OUTAGES = [
    pytest.param("down", "{base}/jwks answered 500", id="down"),
    pytest.param(
        "slow", f"issuer keys not fetched within {FETCH_TIMEOUT:g}s", id="slow"
    ),
    pytest.param("garbage", "JWK Set is not JSON", id="garbage"),
]


@pytest.mark.parametrize(("mode", "detail"), OUTAGES)
async def test_unavailable_without_cached_keys(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    mode: str,
    detail: str,
) -> None:
    issuer.jwks_mode = mode
    token = sign(keys["RS256"], claims(issuer.base), "RS256")

    await unavailable(external, token, issuer.base, detail.format(base=issuer.base))


async def test_unavailable_when_nothing_listens(
    external: ExternalIssuers, keys: dict[str, Key]
) -> None:
    server = IssuerServer(("127.0.0.1", 0), IssuerHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()
    token = sign(keys["RS256"], claims(base), "RS256")

    detail = f"GET {base}/.well-known/oauth-authorization-server: ConnectError"
    await unavailable(external, token, base, detail)


@pytest.mark.parametrize("mode", ["down", "slow", "garbage"])
async def test_cached_keys_outlive_an_outage(
    issuer: IssuerState,
    external: ExternalIssuers,
    keys: dict[str, Key],
    clock: FakeClock,
    mode: str,
) -> None:
    await external.verify(
        sign(keys["RS256"], claims(issuer.base), "RS256"), issuer.base
    )
    issuer.jwks_mode = mode
    clock.advance(300)

    token = sign(keys["ES256"], claims(issuer.base, clock.now), "ES256")
    assert (await external.verify(token, issuer.base))["iss"] == issuer.base
    assert issuer.hits["jwks"] == 2


# Pinned keys -----------------------------------------------------------------


async def test_pinned_keys_need_no_http(
    clock: FakeClock, keys: dict[str, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    conversions = count_conversions(monkeypatch, external_token)
    pinned = public(keys["EdDSA"], keys["ES256"])
    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    async with http, ExternalIssuers(clock, http=http) as external:
        for alg in ("EdDSA", "ES256"):
            # Kubernetes service account tokens carry no typ.
            token = sign(keys[alg], claims(PINNED_ISSUER), alg, typ=...)
            as_text = json.dumps(pinned)
            await external.verify(token, PINNED_ISSUER, pinned_jwks=dict(pinned))
            await external.verify(token, PINNED_ISSUER, pinned_jwks=as_text)

        stranger = sign(keys["RS256"], claims(PINNED_ISSUER), "RS256")
        await refused(
            external,
            stranger,
            PINNED_ISSUER,
            "unknown kid 'rs-1'",
            pinned_jwks=pinned,
        )

    assert requests == []
    assert conversions == {"jwks": 2}


@pytest.mark.parametrize(
    ("pinned", "message"),
    [
        pytest.param({"keys": []}, "pinned_jwks: no usable signing key", id="empty"),
        pytest.param({"kty": "RSA"}, "pinned_jwks: not a JWK Set", id="not-a-set"),
        pytest.param("{", "pinned_jwks: Expecting", id="not-json"),
    ],
)
async def test_unusable_pinned_keys_are_a_configuration_error(
    external: ExternalIssuers, keys: dict[str, Key], pinned: Any, message: str
) -> None:
    token = sign(keys["RS256"], claims(PINNED_ISSUER), "RS256")

    with pytest.raises(ValueError, match=f"^{message}"):
        await external.verify(token, PINNED_ISSUER, pinned_jwks=pinned)


# peek_issuer and the public surface ------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="one-segment"),
        pytest.param("a.b.c", id="not-base64-json"),
        pytest.param("é.é.é", id="not-ascii"),
        pytest.param(None, id="not-a-string"),
        pytest.param(b"a.b.c", id="bytes"),
        pytest.param("e30." * 5, id="too-many-segments"),
        pytest.param(with_payload(b"[1]"), id="payload-array"),
        pytest.param(with_payload(b'{"iss": 1}'), id="iss-number"),
        pytest.param(with_payload(b'{"iss": ""}'), id="iss-empty"),
        pytest.param(with_payload(b"[" * 5000), id="deep-nesting"),
        pytest.param("e30." + "A" * 20_000 + ".c2ln", id="oversized"),
    ],
)
def test_peek_issuer_returns_none_for_garbage(token: Any) -> None:
    assert peek_issuer(token) is None


def test_peek_issuer_reads_iss_without_checking_anything() -> None:
    token = forge({"alg": "none"}, {"iss": "https://gitlab.com"}, b"x")

    assert peek_issuer(token) == "https://gitlab.com"
    assert ExternalIssuers().issuer_of(token) == "https://gitlab.com"
    assert peek_issuer(token, max_bytes=len(token) - 1) is None


def test_public_surface() -> None:
    assert tessera.federation.__all__ == ["ExternalIssuers", "peek_issuer"]
    assert sorted(tessera.federation.__all__) == tessera.federation.__all__


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"leeway": -1}, id="negative-leeway"),
        pytest.param({"leeway": 301}, id="large-leeway"),
        pytest.param({"refresh_interval": 0.5}, id="refresh-interval"),
        pytest.param({"fetch_timeout": 0}, id="fetch-timeout"),
    ],
)
def test_refuses_unsafe_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ExternalIssuers(**options)
