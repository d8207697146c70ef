"""The code grant's checks, with the RFCs' own example values."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tessera.core.clients import Client
from tessera.core.code_grant import CodeParams, check_code_params, check_pkce
from tessera.core.errors import InvalidGrant, InvalidRequest
from tessera.core.form import Form
from tessera.core.id_tokens import at_hash
from tests.core.clients import make_client

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
CONFIDENTIAL = make_client()
PUBLIC = make_client(auth_method="none")


@dataclass(frozen=True)
class StoredCode:
    code_challenge: str | None
    client_id: str = "app"
    user_id: str = "u"
    redirect_uri: str = "https://app.example.test/cb"
    scope: str = "openid"
    nonce: str | None = None
    auth_time: int = 0
    expires_at: int = 0


def params(verifier: str | None) -> CodeParams:
    return CodeParams("code", "https://app.example.test/cb", verifier)


def test_the_rfc_7636_verifier_matches_its_challenge() -> None:
    check_pkce(StoredCode(CHALLENGE), params(VERIFIER), CONFIDENTIAL)


@pytest.mark.parametrize(
    ("challenge", "verifier", "client", "detail"),
    [
        pytest.param(
            CHALLENGE,
            VERIFIER[:-1] + "A",
            CONFIDENTIAL,
            "code_verifier does not match the challenge",
            id="one character off",
        ),
        pytest.param(
            CHALLENGE, None, CONFIDENTIAL, "code_verifier missing", id="missing"
        ),
        pytest.param(
            None,
            VERIFIER,
            CONFIDENTIAL,
            "code_verifier for a code without challenge",
            id="downgrade: verifier without challenge",
        ),
        pytest.param(
            None,
            None,
            PUBLIC,
            "public client's code has no challenge",
            id="public client without PKCE",
        ),
        pytest.param(
            VERIFIER,
            VERIFIER,
            CONFIDENTIAL,
            "code_verifier does not match the challenge",
            id="plain method is not S256",
        ),
    ],
)
def test_pkce_failures(
    challenge: str | None, verifier: str | None, client: Client, detail: str
) -> None:
    with pytest.raises(InvalidGrant) as raised:
        check_pkce(StoredCode(challenge), params(verifier), client)

    assert raised.value.detail == detail


def test_a_confidential_client_may_go_without_pkce() -> None:
    check_pkce(StoredCode(None), params(None), CONFIDENTIAL)


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 43, id="43 characters"),
        pytest.param("a" * 128, id="128 characters"),
        pytest.param("AZaz09-._~" * 5, id="every unreserved class"),
    ],
)
def test_verifier_syntax_accepted(verifier: str) -> None:
    form = Form.parse(f"code=c&redirect_uri=r&code_verifier={verifier}".encode())

    assert check_code_params(form).code_verifier == verifier


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 42, id="42 characters"),
        pytest.param("a" * 129, id="129 characters"),
        pytest.param("a" * 42 + "%2B", id="plus"),
        pytest.param("a" * 42 + "%C3%A9", id="non-ASCII"),
    ],
)
def test_verifier_syntax_refused(verifier: str) -> None:
    form = Form.parse(f"code=c&redirect_uri=r&code_verifier={verifier}".encode())

    with pytest.raises(InvalidRequest) as raised:
        check_code_params(form)

    assert raised.value.description == "The code_verifier is malformed."


def test_at_hash_of_the_oidc_core_example() -> None:
    """OIDC Core Appendix A.4: an RS256 ID token issued with this token."""
    token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"

    assert at_hash(token) == "77QmUPtjPfzWtF2AnpK9RQ"
