"""The public surface of ``tessera.verify`` and what importing it costs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tessera.verify
from tessera.verify import Verifier

from .conftest import AUDIENCE, ISSUER, make_key

EXPECTED_ALL = [
    "AccessToken",
    "BearerProtection",
    "DEFAULT_ALGORITHMS",
    "InsufficientScope",
    "Introspection",
    "InvalidRequest",
    "InvalidToken",
    "OAuthError",
    "TemporarilyUnavailable",
    "Verifier",
    "protect",
]


def test_all_is_sorted_and_complete() -> None:
    assert tessera.verify.__all__ == EXPECTED_ALL
    assert tessera.verify.__all__ == sorted(tessera.verify.__all__)
    for name in EXPECTED_ALL:
        assert getattr(tessera.verify, name) is not None


def test_import_pulls_in_no_server_or_jose_library() -> None:
    src = Path(tessera.verify.__file__).parents[2]
    code = (
        "import json, sys, tessera.verify; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, check=True
    )
    loaded = set(json.loads(result.stdout))

    assert "tessera" in loaded
    assert "cryptography" in loaded
    assert "httpx" in loaded
    for forbidden in ("starlette", "sqlalchemy", "pydantic", "joserfc", "jwt"):
        assert forbidden not in loaded


def test_default_algorithms() -> None:
    verifier = Verifier.from_jwks(ISSUER, AUDIENCE, _one_key())
    assert verifier.algorithms == frozenset({"ES256", "RS256", "PS256", "EdDSA"})
    assert verifier.leeway == 30.0


def _one_key() -> dict[str, object]:
    return {"keys": [make_key("EdDSA", "ed-x").jwk]}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"algorithms": ["HS256"]}, "algorithms", id="hs256"),
        pytest.param({"algorithms": ["none"]}, "algorithms", id="none"),
        pytest.param({"algorithms": []}, "algorithms", id="empty-algorithms"),
        pytest.param({"algorithms": ["ES256", "RS512"]}, "algorithms", id="rs512"),
        pytest.param({"leeway": -1}, "leeway", id="negative-leeway"),
        pytest.param({"leeway": 301}, "leeway", id="large-leeway"),
        pytest.param({"max_token_bytes": 10}, "max_token_bytes", id="tiny-cap"),
        pytest.param({"jwks_refresh_interval": 0}, "refresh", id="zero-refresh"),
    ],
)
def test_unsafe_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Verifier.from_jwks(ISSUER, AUDIENCE, _one_key(), **options)


@pytest.mark.parametrize(
    "issuer",
    [
        pytest.param("http://issuer.example", id="plain-http"),
        pytest.param("ftp://issuer.example", id="ftp"),
        pytest.param("issuer.example", id="no-scheme"),
    ],
)
def test_discovery_needs_an_https_issuer(issuer: str) -> None:
    with pytest.raises(ValueError, match="issuer"):
        Verifier(issuer, AUDIENCE)


def test_loopback_http_issuer_is_allowed_for_development() -> None:
    Verifier("http://127.0.0.1:9999", AUDIENCE)
    Verifier("http://localhost:9999", AUDIENCE)


def test_jwks_without_a_usable_key_is_refused() -> None:
    with pytest.raises(ValueError, match="no usable signing key"):
        Verifier.from_jwks(ISSUER, AUDIENCE, {"keys": [{"kty": "oct", "k": "AAAA"}]})
