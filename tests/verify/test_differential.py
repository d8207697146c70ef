"""``tessera.verify`` against joserfc on a generated corpus of tokens.

The reference is joserfc's ``jwt.decode`` with the same algorithm allow-list,
followed by its ``JWTClaimsRegistry`` with the same claim requirements, leeway
and clock. A resource server built on joserfc must add the RFC 9068 policies
that joserfc leaves to its caller; the reference adds them explicitly, each
one a line of ``reference_accepts``:

- the token is at most 8192 bytes;
- ``typ`` is ``at+jwt`` or ``application/at+jwt``, in any case;
- there is no ``crit`` header;
- the header and payload are UTF-8 JSON with no NaN or Infinity, and the
  header has no duplicate member names (joserfc also reads UTF-16 JSON and
  keeps the last of duplicate names);
- a token without ``kid`` may use a key only when it is the one key of its alg;
- ``client_id`` is a string and ``scope``, when present, a string that holds
  the required scope.

The test asserts that tessera accepts exactly the tokens the reference accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwk as jose_jwk
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode

from tessera.verify import InsufficientScope, InvalidToken, Verifier

from .conftest import (
    AUDIENCE,
    ISSUER,
    NOW,
    FakeClock,
    Keys,
    SigningKey,
    b64url,
    claims,
    encode_json,
    make_key,
    mint,
)

ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
REQUIRED_SCOPES = ("demo.read",)
LEEWAY = 30
MAX_TOKEN_BYTES = 8192
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}


# The reference -------------------------------------------------------------


class StrictDecoder(json.JSONDecoder):
    def __init__(self, **options: Any) -> None:
        super().__init__(parse_constant=reject_constant, **options)


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member name")
    return dict(pairs)


class Reference:
    def __init__(self, jwks: dict[str, Any]) -> None:
        self.keys = [jose_jwk.import_key(jwk) for jwk in jwks["keys"]]
        self.registry = JWSRegistry(algorithms=ALGORITHMS, strict_check_header=False)
        # The total size is capped below, as tessera caps it.
        self.registry.max_header_length = MAX_TOKEN_BYTES
        self.claims = jose_jwt.JWTClaimsRegistry(
            now=NOW,
            leeway=LEEWAY,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )

    def resolve(self, obj: Any) -> Any:
        header = obj.headers()
        kid, alg = header.get("kid"), header["alg"]
        if kid is None:
            candidates = [key for key in self.keys if key.alg == alg]
            if len(candidates) != 1:
                raise ValueError("no single key for alg")
            return candidates[0]
        for key in self.keys:
            if key.kid == kid:
                return key
        raise ValueError("unknown kid")

    def accepts(self, token: str) -> bool:
        try:
            return self._accepts(token)
        except (JoseError, ValueError, TypeError, KeyError, RecursionError):
            return False

    def _accepts(self, token: str) -> bool:
        if len(token) > MAX_TOKEN_BYTES:
            return False
        decoded = jose_jwt.decode(
            token,
            self.resolve,
            registry=self.registry,
            decoder_cls=StrictDecoder,
        )
        self.claims.validate(decoded.claims)

        header_segment, payload_segment, _ = token.split(".")
        header_json = urlsafe_b64decode(header_segment.encode()).decode("utf-8")
        urlsafe_b64decode(payload_segment.encode()).decode("utf-8")
        header = json.loads(
            header_json, object_pairs_hook=unique_members, cls=StrictDecoder
        )
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            return False
        if "crit" in header:
            return False

        scope = decoded.claims.get("scope", "")
        return (
            isinstance(decoded.claims["client_id"], str)
            and isinstance(scope, str)
            and set(REQUIRED_SCOPES) <= set(scope.split())
        )


# The corpus ----------------------------------------------------------------


def flip_signature_bit(token: str) -> str:
    head, signature = token.rsplit(".", 1)
    raw = bytearray(urlsafe_b64decode(signature.encode()))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{b64url(bytes(raw))}"


def swap_segment(token: str, index: int, segment: str) -> str:
    segments = token.split(".")
    segments[index] = segment
    return ".".join(segments)


def hs256(key: SigningKey, secret: bytes) -> str:
    signing_input = (
        encode_json({"alg": "HS256", "typ": "at+jwt", "kid": key.kid})
        + "."
        + encode_json(claims())
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def corpus_for(key: SigningKey, keys: Keys) -> Iterator[tuple[str, str]]:
    """Tokens around one issuer key, as (id, token) pairs."""
    good = mint(key)
    attacker = make_key(key.alg, key.kid)
    other_algs = [alg for alg in ALGORITHMS if alg != key.alg]

    yield "valid", good
    for typ in ("AT+JWT", "application/at+jwt", "Application/AT+jwt"):
        yield f"typ-{typ}", mint(key, typ=typ)
    for typ in ("JWT", "jwt", "at+jwt ", "application/jwt", 1, None, ...):
        yield f"typ-bad-{typ!r}", mint(key, typ=typ)
    yield "no-kid", mint(key, kid=...)
    yield "kid-unknown", mint(key, kid="nope")
    yield "kid-number", mint(key, kid=1)
    yield "kid-null", mint(key, kid=None)
    yield "extra-header", mint(key, **{"x-trace": "abc"})
    yield "cty-header", mint(key, cty="JWT")
    yield "crit-exp", mint(key, crit=["exp"], exp=1)
    yield "crit-empty", mint(key, crit=[])
    yield "b64-true", mint(key, b64=True)
    yield "b64-false", mint(key, b64=False)
    yield "b64-false-crit", mint(key, b64=False, crit=["b64"])
    yield "jku-issuer-signed", mint(key, jku="https://attacker.example/jwks")
    yield "jku-attacker", mint(attacker, jku="https://attacker.example/jwks")
    yield "jwk-attacker", mint(attacker, jwk=attacker.jwk)
    yield "jwk-attacker-own-kid", mint(attacker, kid="evil", jwk=attacker.jwk)
    yield "x5u-attacker", mint(attacker, x5u="https://attacker.example/x.pem")
    yield "x5c-attacker-no-kid", mint(attacker, kid=..., x5c=["MIIBIjAN"])
    yield "attacker-same-kid", mint(attacker)
    for alg in other_algs:
        yield f"header-alg-{alg}", mint(key, alg=alg)
        yield f"other-key-{alg}-this-kid", mint(keys[alg], kid=key.kid)
    yield "alg-none", swap_segment(mint(key, alg="none"), 2, b64url(b"\x00" * 8))
    yield "alg-HS256-pem", hs256(key, json.dumps(key.jwk, sort_keys=True).encode())
    yield "alg-HS256-x", hs256(key, key.jwk.get("x", key.jwk.get("n", "")).encode())
    yield "alg-missing", mint(key, alg=...)
    yield "alg-lower", mint(key, alg=key.alg.lower())

    yield "signature-bit", flip_signature_bit(good)
    yield "signature-truncated", good[:-4]
    yield "signature-extended", good + "AAAA"
    yield "signature-padded", good + "=="
    yield "signature-plus", good[:-3] + "+" + good[-2:]
    yield "signature-space", good[:-3] + " " + good[-2:]
    yield "signature-empty", good.rsplit(".", 1)[0] + "."
    yield "signature-last-char", good[:-1] + ("B" if good[-1] != "B" else "C")
    yield "payload-swapped", swap_segment(good, 1, encode_json(claims(sub="root")))
    yield (
        "header-swapped",
        swap_segment(
            good, 0, encode_json({"alg": key.alg, "typ": "JWT", "kid": key.kid})
        ),
    )
    yield "two-segments", good.rsplit(".", 1)[0]
    yield "four-segments", good + ".AAAA"
    yield "non-ascii", good + "é"

    raw = f'{{"alg":"{key.alg}","typ":"at+jwt","kid":"{key.kid}"'.encode()
    yield "header-duplicate-typ", mint(key, header=raw + b',"typ":"JWT"}')
    yield "header-duplicate-same", mint(key, header=raw + b',"typ":"at+jwt"}')
    yield "header-nan", mint(key, header=raw + b',"n":NaN}')
    yield "header-utf16", mint(key, header=(raw + b"}").decode().encode("utf-16"))
    yield (
        "header-nested",
        mint(key, header=raw + b',"n":' + b"[" * 2000 + b"]" * 2000 + b"}"),
    )
    yield "header-spaces", mint(key, header=b" " + raw + b" } ")
    yield "payload-array", mint(key, b"[]")
    yield "payload-utf16", mint(key, json.dumps(claims()).encode("utf-16"))
    yield "payload-nan-claim", mint(key, json.dumps(claims(x=float("nan"))).encode())
    yield "payload-spaces", mint(key, b" " + json.dumps(claims()).encode() + b"\n")
    yield "oversized", mint(key, claims(pad="x" * 8000))
    yield "just-under-cap", mint(key, claims(pad="x" * 5000))

    for name, changes in CLAIM_CHANGES:
        yield f"claims-{name}", mint(key, claims(**changes))


CLAIM_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("exp-edge", {"exp": NOW - LEEWAY}),
    ("exp-inside", {"exp": NOW - LEEWAY + 1}),
    ("exp-float", {"exp": NOW + 0.25}),
    ("exp-bool", {"exp": True}),
    ("exp-string", {"exp": "2000000000"}),
    ("exp-null", {"exp": None}),
    ("exp-missing", {"exp": ...}),
    ("nbf-edge", {"nbf": NOW + LEEWAY}),
    ("nbf-beyond", {"nbf": NOW + LEEWAY + 1}),
    ("nbf-bool", {"nbf": False}),
    ("iat-edge", {"iat": NOW + LEEWAY}),
    ("iat-beyond", {"iat": NOW + LEEWAY + 1}),
    ("iat-missing", {"iat": ...}),
    ("iss-other", {"iss": "https://other.example"}),
    ("iss-missing", {"iss": ...}),
    ("iss-list", {"iss": [ISSUER]}),
    ("aud-list", {"aud": ["https://x.example", AUDIENCE]}),
    ("aud-list-without", {"aud": ["https://x.example"]}),
    ("aud-list-number", {"aud": [AUDIENCE, 1]}),
    ("aud-empty", {"aud": []}),
    ("aud-missing", {"aud": ...}),
    ("sub-empty", {"sub": ""}),
    ("sub-number", {"sub": 5}),
    ("sub-missing", {"sub": ...}),
    ("jti-missing", {"jti": ...}),
    ("client-id-number", {"client_id": 7}),
    ("client-id-missing", {"client_id": ...}),
    ("scope-without-read", {"scope": "demo.write"}),
    ("scope-list", {"scope": ["demo.read"]}),
    ("scope-missing", {"scope": ...}),
    ("scope-exact", {"scope": "demo.read"}),
]


@pytest.fixture(scope="module")
def corpus(keys: Keys) -> list[tuple[str, str]]:
    tokens = [
        (f"{alg}/{name}", token)
        for alg in ALGORITHMS
        for name, token in corpus_for(keys[alg], keys)
    ]
    assert len({name for name, _ in tokens}) == len(tokens)
    return tokens


async def tessera_accepts(verifier: Verifier, token: str) -> bool:
    try:
        await verifier.verify(token, REQUIRED_SCOPES)
    except (InvalidToken, InsufficientScope):
        return False
    return True


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
async def test_tessera_accepts_exactly_what_joserfc_accepts(
    corpus: list[tuple[str, str]], jwks: dict[str, Any]
) -> None:
    verifier = Verifier.from_jwks(ISSUER, AUDIENCE, jwks, clock=FakeClock(NOW))
    reference = Reference(jwks)

    verdicts = {
        name: (await tessera_accepts(verifier, token), reference.accepts(token))
        for name, token in corpus
    }

    disagreements = {
        name: {"tessera": ours, "joserfc": theirs}
        for name, (ours, theirs) in verdicts.items()
        if ours != theirs
    }
    assert disagreements == {}
    accepted = {name for name, (ours, _) in verdicts.items() if ours}
    assert len(corpus) == 4 * 96
    assert accepted == {f"{alg}/{name}" for alg in ALGORITHMS for name in ACCEPTED}


# Per algorithm, the cases both accept; everything else both refuse.
ACCEPTED = {
    "valid",
    "typ-AT+JWT",
    "typ-application/at+jwt",
    "typ-Application/AT+jwt",
    "no-kid",
    "extra-header",
    "cty-header",
    "b64-true",
    "jku-issuer-signed",
    "header-spaces",
    "payload-spaces",
    "just-under-cap",
    "claims-exp-inside",
    "claims-exp-float",
    "claims-nbf-edge",
    "claims-iat-edge",
    "claims-aud-list",
    "claims-scope-exact",
}


def test_reference_is_not_trivially_permissive(
    jwks: dict[str, Any], keys: Keys
) -> None:
    reference = Reference(jwks)

    assert reference.accepts(mint(keys["ES256"]))
    assert not reference.accepts(mint(keys["ES256"], typ="JWT"))
    assert not reference.accepts(mint(keys["attacker-ES256"]))
