"""``tessera demo`` end to end: a real token service and demo API."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def result() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tessera", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_walks_through_every_step_with_the_expected_answers(
    result: subprocess.CompletedProcess[str],
) -> None:
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in (
        "== 1. Access token request",
        "== 2. Identity validation and issuance",
        "== 3. Use",
        "== 4. Responses",
    ):
        assert heading in out
    statuses = re.findall(r"^< (\d{3}) ", out, flags=re.MULTILINE)
    # token, jwks, hello; 401, 400, 400, 401, 403; token, admin; revoke, revoked.
    assert statuses == [
        "200", "200", "200", "401", "400", "400", "401", "403",
        "200", "200", "200", "401",
    ]  # fmt: skip
    assert '< www-authenticate: Bearer realm="tessera"\n' in out
    assert 'error="insufficient_scope"' in out and 'scope="demo.admin"' in out
    assert "!!!" not in out


def test_demo_never_prints_a_secret_or_a_whole_token(
    result: subprocess.CompletedProcess[str],
) -> None:
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    assert not re.search(r"tsec_[0-9A-Za-z]{10}", text)
    # A JWT is three base64url segments; none is printed whole.
    assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}", text)
