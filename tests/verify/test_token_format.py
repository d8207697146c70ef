"""The JOSE layer of ``Verifier.verify``: size, segments, base64url, header,
key selection and signature, one refused token per row.

Each row pins the private ``detail`` (what the logs say); the public face of
every refusal is the same generic ``invalid_token``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import sys
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tessera.verify import InvalidToken, Verifier

from .conftest import (
    Case,
    Keys,
    SigningKey,
    b64url,
    check_refused,
    claims,
    encode_json,
    mint,
)


def with_signature(token: str, signature: str) -> str:
    return token.rsplit(".", 1)[0] + "." + signature


def raw_header(
    key: SigningKey, header: bytes, payload: dict[str, Any] | None = None
) -> str:
    return mint(key, payload or claims(), header=header)


def hs256_with_public_pem(keys: Keys) -> str:
    pem = (
        keys["RS256"]
        .private.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = (
        encode_json({"alg": "HS256", "typ": "at+jwt", "kid": "rs-1"})
        + "."
        + encode_json(claims())
    )
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def alg_none(keys: Keys) -> str:
    header = encode_json({"alg": "none", "typ": "at+jwt", "kid": "es-1"})
    return f"{header}.{encode_json(claims())}.AAAA"


def nested_header(depth: int) -> bytes:
    return (
        b'{"alg":"ES256","typ":"at+jwt","kid":"es-1","x":'
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


def flip_last_char(token: str) -> str:
    # The last of the 86 characters of an ES256 signature carries 4 unused
    # bits; only "A", "Q", "g" and "w" leave them zero.
    signature = token.rsplit(".", 1)[1]
    return replace_char(token, 2, len(signature) - 1, "B")


def replace_segment(token: str, index: int, segment: str) -> str:
    segments = token.split(".")
    segments[index] = segment
    return ".".join(segments)


def insert(token: str, index: int, position: int, text: str) -> str:
    # Four characters keep the segment's length modulo 4, so only the
    # alphabet check can catch them.
    segment = token.split(".")[index]
    return replace_segment(token, index, segment[:position] + text + segment[position:])


def replace_char(token: str, index: int, position: int, char: str) -> str:
    segment = token.split(".")[index]
    return replace_segment(
        token, index, segment[:position] + char + segment[position + 1 :]
    )


def tamper_payload(token: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{encode_json(claims(scope='demo.admin'))}.{signature}"


ES = "ES256"
HEADER_CASES = [
    Case("alg-none", alg_none, "alg 'none' is not allowed"),
    Case(
        "hs256-with-rsa-public-pem", hs256_with_public_pem, "alg 'HS256' is not allowed"
    ),
    Case("alg-es384", lambda k: mint(k[ES], alg="ES384"), "alg 'ES384' is not allowed"),
    Case("alg-missing", lambda k: mint(k[ES], alg=...), "alg None is not allowed"),
    Case(
        "alg-list", lambda k: mint(k[ES], alg=["ES256"]), "alg ['ES256'] is not allowed"
    ),
    Case(
        "es256-on-rsa-kid",
        lambda k: mint(k["attacker-ES256"], kid="rs-1"),
        "key 'rs-1' is not ES256",
    ),
    Case(
        "rs256-on-ec-kid",
        lambda k: mint(k["attacker-RS256"], kid="es-1"),
        "key 'es-1' is not RS256",
    ),
    Case(
        "eddsa-on-ec-kid",
        lambda k: mint(k["EdDSA"], kid="es-1"),
        "key 'es-1' is not EdDSA",
    ),
    Case(
        "ps256-on-rs256-key",
        lambda k: mint(k["RS256"], sign_alg="PS256"),
        "key 'rs-1' is not PS256",
    ),
    Case(
        "rs256-header-pss-signature",
        lambda k: mint(k["RS256"], sign_alg="PS256", alg="RS256"),
        "bad signature",
    ),
    Case(
        "attacker-key-issuer-kid", lambda k: mint(k["attacker-ES256"]), "bad signature"
    ),
    Case(
        "jwk-header-own-kid",
        lambda k: mint(
            k["attacker-ES256"],
            kid="evil",
            jwk={**k["attacker-ES256"].jwk, "kid": "evil"},
        ),
        "unknown kid 'evil'",
    ),
    Case(
        "jwk-header-issuer-kid",
        lambda k: mint(k["attacker-ES256"], jwk=k["attacker-ES256"].jwk),
        "bad signature",
    ),
    Case(
        "jku-header",
        lambda k: mint(
            k["attacker-ES256"], kid="evil", jku="https://attacker.example/jwks"
        ),
        "unknown kid 'evil'",
    ),
    Case(
        "x5u-header",
        lambda k: mint(k["attacker-ES256"], x5u="https://attacker.example/cert.pem"),
        "bad signature",
    ),
    Case(
        "x5c-header-no-kid",
        lambda k: mint(k["attacker-ES256"], kid=..., x5c=["MIIBfake"]),
        "bad signature",
    ),
    Case("typ-jwt", lambda k: mint(k[ES], typ="JWT"), "typ 'JWT' is not at+jwt"),
    Case(
        "typ-application-jwt",
        lambda k: mint(k[ES], typ="application/jwt"),
        "typ 'application/jwt' is not at+jwt",
    ),
    Case("typ-missing", lambda k: mint(k[ES], typ=...), "typ None is not at+jwt"),
    Case("typ-number", lambda k: mint(k[ES], typ=1), "typ 1 is not at+jwt"),
    Case(
        "typ-with-parameter",
        lambda k: mint(k[ES], typ="at+jwt; q=1"),
        "typ 'at+jwt; q=1' is not at+jwt",
    ),
    Case("crit-exp", lambda k: mint(k[ES], crit=["exp"], exp=1), "crit header present"),
    Case("crit-empty", lambda k: mint(k[ES], crit=[]), "crit header present"),
    Case(
        "b64-false-crit",
        lambda k: mint(k[ES], b64=False, crit=["b64"]),
        "crit header present",
    ),
    Case("b64-false", lambda k: mint(k[ES], b64=False), "b64 header present"),
    Case("kid-number", lambda k: mint(k[ES], kid=7), "kid is not a string"),
    Case("kid-null", lambda k: mint(k[ES], kid=None), "kid is not a string"),
    Case("kid-unknown", lambda k: mint(k[ES], kid="es-9"), "unknown kid 'es-9'"),
    Case(
        "header-array",
        lambda k: raw_header(k[ES], b'["ES256"]'),
        "header is not a JSON object",
    ),
    Case(
        "header-string",
        lambda k: raw_header(k[ES], b'"ES256"'),
        "header is not a JSON object",
    ),
    Case(
        "header-not-json",
        lambda k: raw_header(k[ES], b'{"alg":'),
        "header is not JSON: JSONDecodeError",
    ),
    Case(
        "header-nan",
        lambda k: raw_header(
            k[ES], b'{"alg":"ES256","typ":"at+jwt","kid":"es-1","n":NaN}'
        ),
        "header is not JSON: ValueError",
    ),
    Case(
        "header-duplicate-alg",
        lambda k: raw_header(
            k[ES], b'{"alg":"HS256","alg":"ES256","typ":"at+jwt","kid":"es-1"}'
        ),
        "header is not JSON: ValueError",
    ),
    Case(
        "header-deeply-nested",
        lambda k: raw_header(k[ES], nested_header(2500)),
        "header is not JSON: RecursionError",
    ),
    Case(
        "header-invalid-utf8",
        lambda k: raw_header(k[ES], b'{"alg":"ES256","typ":"at+jwt","kid":"\xff"}'),
        "header is not JSON: UnicodeDecodeError",
    ),
    Case(
        "header-utf16",
        lambda k: raw_header(
            k[ES], '{"alg":"ES256","typ":"at+jwt","kid":"es-1"}'.encode("utf-16")
        ),
        "header is not JSON: UnicodeDecodeError",
    ),
]

STRUCTURE_CASES = [
    Case(
        "oversized",
        lambda k: mint(k[ES], claims(pad="x" * 8000)),
        "token longer than 8192 bytes",
    ),
    Case(
        "huge-header",
        lambda k: mint(k[ES], pad="x" * 7000),
        "token longer than 8192 bytes",
    ),
    Case("non-ascii", lambda k: mint(k[ES]) + "é", "token is not ASCII"),
    Case(
        "two-segments",
        lambda k: mint(k[ES]).rsplit(".", 1)[0],
        "token does not have three segments",
    ),
    Case(
        "four-segments",
        lambda k: mint(k[ES]) + ".AAAA",
        "token does not have three segments",
    ),
    Case(
        "empty-signature",
        lambda k: mint(k[ES]).rsplit(".", 1)[0] + ".",
        "token has an empty segment",
    ),
    Case(
        "empty-payload",
        lambda k: replace_segment(mint(k[ES]), 1, ""),
        "token has an empty segment",
    ),
    Case("padded-signature", lambda k: mint(k[ES]) + "==", "segment is not base64url"),
    Case(
        "plus-in-signature",
        lambda k: replace_char(mint(k[ES]), 2, 10, "+"),
        "segment is not base64url",
    ),
    Case(
        "slash-in-payload",
        lambda k: replace_char(mint(k[ES]), 1, 0, "/"),
        "segment is not base64url",
    ),
    Case(
        "space-in-payload",
        lambda k: replace_char(mint(k[ES]), 1, 5, " "),
        "segment is not base64url",
    ),
    Case(
        "newline-in-signature",
        lambda k: replace_char(mint(k[ES]), 2, 3, "\n"),
        "segment is not base64url",
    ),
    Case(
        "four-spaces-in-header",
        lambda k: insert(mint(k[ES]), 0, 4, "    "),
        "segment is not base64url",
    ),
    Case(
        "four-bangs-in-signature",
        lambda k: insert(mint(k[ES]), 2, 8, "!!!!"),
        "segment is not base64url",
    ),
    Case(
        "star-in-header",
        lambda k: replace_char(mint(k[ES]), 0, 3, "*"),
        "segment is not base64url",
    ),
    Case(
        "non-canonical-signature",
        lambda k: flip_last_char(mint(k[ES])),
        "base64url segment is not canonical",
    ),
    Case(
        "impossible-length",
        lambda k: mint(k[ES])[:-1],
        "base64url segment has an impossible length",
    ),
    Case(
        "payload-invalid-utf8",
        lambda k: mint(k[ES], b'{"iss":"\xff"}'),
        "payload is not JSON: UnicodeDecodeError",
    ),
    Case(
        "payload-not-json",
        lambda k: mint(k[ES], b"hello"),
        "payload is not JSON: JSONDecodeError",
    ),
    Case(
        "payload-array", lambda k: mint(k[ES], b"[1,2]"), "payload is not a JSON object"
    ),
    Case(
        "payload-infinity",
        lambda k: mint(k[ES], b'{"exp":Infinity}'),
        "payload is not JSON: ValueError",
    ),
    Case("payload-tampered", lambda k: tamper_payload(mint(k[ES])), "bad signature"),
    Case(
        "signature-short",
        lambda k: with_signature(mint(k[ES]), b64url(b"\x01" * 63)),
        "bad signature",
    ),
    Case(
        "signature-zero",
        lambda k: with_signature(mint(k[ES]), b64url(bytes(64))),
        "bad signature",
    ),
]


@pytest.mark.parametrize(
    "case", [case.param() for case in HEADER_CASES + STRUCTURE_CASES]
)
async def test_refused(case: Case, keys: Keys, verifier: Verifier) -> None:
    await check_refused(verifier, case.build(keys), case.detail)


def _c_calls(run: Callable[[], None]) -> set[str]:
    names: set[str] = set()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            names.add(getattr(arg, "__name__", repr(arg)))

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return names


def test_size_cap_comes_before_decoding_and_cryptography(
    keys: Keys, verifier: Verifier
) -> None:
    good = mint(keys[ES])
    oversized = mint(keys[ES], claims(pad="x" * 8000))

    def verify(token: str) -> Callable[[], None]:
        def run() -> None:
            coroutine = verifier.verify(token)
            with contextlib.suppress(StopIteration, InvalidToken):
                coroutine.send(None)

        return run

    accepted_calls = _c_calls(verify(good))
    refused_calls = _c_calls(verify(oversized))

    assert {"a2b_base64", "translate", "verify"} <= accepted_calls
    assert {"a2b_base64", "translate", "encode", "verify"}.isdisjoint(refused_calls)
