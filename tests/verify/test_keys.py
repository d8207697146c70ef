"""JWK conversion and signature checks, on the RFCs' own example vectors."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from tessera.verify._jws import decode_segment, split_token
from tessera.verify._keys import SUPPORTED_ALGORITHMS, KeySet, load_jwk, load_jwks

from .conftest import b64url, make_key

# RFC 7515 Appendix A.3: ES256. The header is {"alg":"ES256"}.
RFC7515_A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
RFC7515_A3_JWS = (
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQ"
    "xfKTUJqPP3-Kg6NU1Q"
)

# RFC 8037 Appendix A.4: Ed25519. The header is {"alg":"EdDSA"}.
RFC8037_A4_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_A4_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7"
    "sVvpAr_MuM0KAg"
)


def check(jwk: dict[str, Any], jws: str) -> None:
    [key] = load_jwk(jwk, SUPPORTED_ALGORITHMS)
    signing_input, _, _, signature = split_token(jws, 8192)
    key.check(decode_segment(signature), signing_input)


@pytest.mark.parametrize(
    ("jwk", "jws", "alg"),
    [
        pytest.param(RFC7515_A3_JWK, RFC7515_A3_JWS, "ES256", id="rfc7515-a3-es256"),
        pytest.param(RFC8037_A4_JWK, RFC8037_A4_JWS, "EdDSA", id="rfc8037-a4-eddsa"),
    ],
)
def test_rfc_example_signatures(jwk: dict[str, Any], jws: str, alg: str) -> None:
    [key] = load_jwk(jwk, SUPPORTED_ALGORITHMS)
    assert key.alg == alg
    assert key.kid is None

    check(jwk, jws)

    header, payload, signature = jws.split(".")
    other_payload = b64url(b"Example of Ed25519 signing!")
    with pytest.raises(InvalidSignature):
        check(jwk, f"{header}.{other_payload}.{signature}")


def test_rsa_key_without_alg_serves_both_rsa_algorithms() -> None:
    key = make_key("RS256", "rs-1")
    jwk = {name: value for name, value in key.jwk.items() if name != "alg"}

    keys = load_jwk(jwk, SUPPORTED_ALGORITHMS)

    assert sorted(k.alg for k in keys) == ["PS256", "RS256"]
    rs256 = KeySet(keys).find("rs-1", "RS256")
    ps256 = KeySet(keys).find("rs-1", "PS256")
    assert rs256 is not None
    assert ps256 is not None
    rs256.check(key.sign(b"data", "RS256"), b"data")
    ps256.check(key.sign(b"data", "PS256"), b"data")
    with pytest.raises(InvalidSignature):
        rs256.check(key.sign(b"data", "PS256"), b"data")


def _without(jwk: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != name}


EC = make_key("ES256", "ec").jwk
RSA = make_key("RS256", "rsa").jwk
OKP = make_key("EdDSA", "okp").jwk
SHORT_RSA = make_key("RS256", "short", rsa_bits=1024).jwk


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        pytest.param({**EC, "crv": "P-384"}, "not on P-256", id="ec-p384"),
        pytest.param({**EC, "x": EC["y"]}, "Invalid EC key", id="ec-off-curve"),
        pytest.param({**EC, "x": EC["x"][:-3]}, "32 bytes", id="ec-short-x"),
        pytest.param(_without(EC, "y"), "'y' missing", id="ec-no-y"),
        pytest.param({**EC, "x": EC["x"] + "="}, "not base64url", id="ec-padded-x"),
        pytest.param({**EC, "alg": "RS256"}, "does not fit", id="ec-alg-rs256"),
        pytest.param({**EC, "alg": "HS256"}, "does not fit", id="ec-alg-hs256"),
        pytest.param({**RSA, "alg": "ES256"}, "does not fit", id="rsa-alg-es256"),
        pytest.param(SHORT_RSA, "shorter than 2048", id="rsa-1024"),
        pytest.param({**OKP, "crv": "X25519"}, "not Ed25519", id="okp-x25519"),
        pytest.param({"kty": "oct", "k": "c2VjcmV0"}, "unsupported kty", id="oct"),
        pytest.param({**EC, "kid": 5}, "kid is not a string", id="kid-number"),
        pytest.param(["kty", "EC"], "not an object", id="not-an-object"),
    ],
)
def test_unusable_jwk_is_refused(jwk: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_jwk(jwk, SUPPORTED_ALGORITHMS)


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({**EC, "use": "enc"}, id="use-enc"),
        pytest.param({**EC, "key_ops": ["encrypt"]}, id="key-ops-encrypt"),
        pytest.param({**EC, "key_ops": "verify"}, id="key-ops-not-a-list"),
    ],
)
def test_jwk_not_for_signatures_is_skipped(jwk: dict[str, Any]) -> None:
    assert load_jwk(jwk, SUPPORTED_ALGORITHMS) == []


def test_key_outside_the_allow_list_is_skipped() -> None:
    assert load_jwk(EC, frozenset({"EdDSA"})) == []


def test_key_set_keeps_usable_keys_and_skips_the_rest() -> None:
    document = {"keys": [SHORT_RSA, {"kty": "oct", "k": "AAAA"}, EC, "junk"]}

    keys = load_jwks(document, SUPPORTED_ALGORITHMS)

    assert [key.kid for key in keys.keys] == ["ec"]
    assert keys.kids == frozenset({"ec"})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param([], "not a JWK Set", id="list"),
        pytest.param({"keys": {}}, "not a JWK Set", id="keys-object"),
        pytest.param({"keys": []}, "no usable signing key", id="empty"),
        pytest.param({"keys": [EC] * 101}, "more than 100 keys", id="too-many"),
    ],
)
def test_unusable_key_set_is_refused(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_jwks(document, SUPPORTED_ALGORITHMS)
