"""``tessera demo-issuer``: the stand-in external OIDC issuer, driven as a real
child process through its HTTP API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.errors import InvalidKeyIdError, JoseError, SecurityWarning
from joserfc.jwk import KeySet, RSAKey

from tessera.demo.issuer import GitHubJob
from tests.standin_issuer import StandinIssuer, running_standin

AUDIENCE = "https://tessera.example.test"

GITHUB_CLAIMS = {
    "iss", "aud", "sub", "repository", "repository_owner", "repository_id",
    "repository_owner_id", "ref", "ref_type", "sha", "job_workflow_ref",
    "workflow_ref", "workflow", "event_name", "actor", "run_id", "run_attempt",
    "runner_environment", "jti", "iat", "nbf", "exp",
}  # fmt: skip
GITLAB_CLAIMS = {
    "iss", "aud", "sub", "project_path", "project_id", "namespace_path",
    "namespace_id", "ref", "ref_type", "ref_protected", "pipeline_id",
    "pipeline_source", "job_id", "user_login", "jti", "iat", "nbf", "exp",
}  # fmt: skip
KUBERNETES_CLAIMS = {"iss", "aud", "sub", "kubernetes.io", "iat", "nbf", "exp"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[StandinIssuer]:
    """One stand-in for the tests that change none of its state."""
    yield from running_standin()


@pytest.fixture
def fresh_issuer() -> Iterator[StandinIssuer]:
    """A stand-in of the test's own, for rotation, faults and counters."""
    yield from running_standin()


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "==="))
    return decoded


def _verify(
    token: str, jwks: dict[str, Any], alg: str = "RS256"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a token whose signature the key set checks."""
    with warnings.catch_warnings():
        # RFC 9864 deprecates the name "EdDSA"; the stand-in still signs with
        # it because the verifiers it tests accept it.
        warnings.simplefilter("ignore", SecurityWarning)
        signed = jws.deserialize_compact(
            token, KeySet.import_key_set(jwks), algorithms=[alg]
        )
    return dict(signed.protected), json.loads(signed.payload)


def _rsa_kid(jwks: dict[str, Any]) -> str:
    return next(str(key["kid"]) for key in jwks["keys"] if key["alg"] == "RS256")


# -- Discovery and keys ----------------------------------------------------------


def test_discovery_names_the_issuer_and_its_key_set(issuer: StandinIssuer) -> None:
    response = httpx.get(issuer.url + "/.well-known/openid-configuration")

    assert response.status_code == 200
    document = response.json()
    assert set(document) == {
        "issuer",
        "jwks_uri",
        "id_token_signing_alg_values_supported",
        "response_types_supported",
        "subject_types_supported",
        "claims_supported",
    }
    assert document["issuer"] == issuer.url
    assert document["jwks_uri"] == issuer.url + "/.well-known/jwks"
    assert document["id_token_signing_alg_values_supported"] == [
        "RS256",
        "ES256",
        "EdDSA",
    ]
    assert document["response_types_supported"] == ["id_token"]
    assert document["subject_types_supported"] == ["public", "pairwise"]
    emitted = GITHUB_CLAIMS | GITLAB_CLAIMS | KUBERNETES_CLAIMS | {"environment"}
    assert set(document["claims_supported"]) == emitted


def test_jwks_publishes_one_public_signing_key_per_algorithm(
    issuer: StandinIssuer,
) -> None:
    response = httpx.get(issuer.url + "/.well-known/jwks")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=60"
    keys = response.json()["keys"]
    shapes = {(key["alg"], key["kty"], key.get("crv")) for key in keys}
    assert shapes == {
        ("RS256", "RSA", None),
        ("ES256", "EC", "P-256"),
        ("EdDSA", "OKP", "Ed25519"),
    }
    for key in keys:
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        public = KeySet.import_key_set({"keys": [key]}).keys[0]
        assert key["kid"] == public.thumbprint()
    rsa = next(key for key in keys if key["kty"] == "RSA")
    assert len(base64.urlsafe_b64decode(rsa["n"] + "==")) * 8 == 2048


# -- GitHub's ID-token request protocol -------------------------------------------


def test_github_request_token_yields_a_signed_github_shaped_token(
    issuer: StandinIssuer,
) -> None:
    response = httpx.get(
        issuer.url + "/token",
        params={"api-version": "2.0", "audience": AUDIENCE},
        headers={"Authorization": f"bearer {issuer.request_token}"},
    )

    assert response.status_code == 200
    assert set(response.json()) == {"value"}
    jwks = issuer.jwks()
    header, claims = _verify(response.json()["value"], jwks)
    assert header == {"alg": "RS256", "kid": _rsa_kid(jwks), "typ": "JWT"}
    assert set(claims) == GITHUB_CLAIMS
    assert claims["iss"] == issuer.url
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "repo:octo-org/octo-repo:ref:refs/heads/main"
    assert claims["repository"] == "octo-org/octo-repo"
    assert claims["repository_owner"] == "octo-org"
    assert claims["ref"] == "refs/heads/main"
    assert claims["ref_type"] == "branch"
    assert claims["event_name"] == "push"
    assert claims["runner_environment"] == "github-hosted"
    workflow_ref = "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main"
    assert claims["workflow_ref"] == claims["job_workflow_ref"] == workflow_ref
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 300
    assert abs(claims["iat"] - time.time()) < 10


def test_github_request_without_audience_gets_the_owner_url(
    issuer: StandinIssuer,
) -> None:
    response = httpx.get(
        issuer.url + "/token",
        headers={"Authorization": f"Bearer {issuer.request_token}"},
    )

    assert response.status_code == 200
    assert _segment(response.json()["value"], 1)["aud"] == "https://github.com/octo-org"


@pytest.mark.parametrize(
    "authorization",
    [None, "bearer wrong", "basic {token}", "{token}", "bearer"],
    ids=["missing", "wrong-token", "wrong-scheme", "no-scheme", "empty"],
)
def test_github_request_without_the_request_token_is_refused(
    issuer: StandinIssuer, authorization: str | None
) -> None:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=issuer.request_token)

    response = httpx.get(
        issuer.url + "/token", params={"audience": AUDIENCE}, headers=headers
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "invalid_token"}


def test_github_job_options_shape_the_claims() -> None:
    options = ("--repository", "acme/payments", "--ref", "refs/tags/v1.2.0")
    with StandinIssuer(*options, "--environment", "production") as issuer:
        token = issuer.github_token(AUDIENCE)
        _, claims = _verify(token, issuer.jwks())

    assert set(claims) == GITHUB_CLAIMS | {"environment"}
    assert claims["sub"] == "repo:acme/payments:environment:production"
    assert claims["environment"] == "production"
    assert claims["repository_owner"] == "acme"
    assert claims["ref_type"] == "tag"
    assert claims["workflow_ref"].endswith("/ci.yml@refs/tags/v1.2.0")


@pytest.mark.parametrize(
    ("job", "subject"),
    [
        (GitHubJob(), "repo:octo-org/octo-repo:ref:refs/heads/main"),
        (
            GitHubJob(environment="prod", event_name="pull_request"),
            "repo:octo-org/octo-repo:environment:prod",
        ),
        (
            GitHubJob(ref="refs/pull/7/merge", event_name="pull_request"),
            "repo:octo-org/octo-repo:pull_request",
        ),
    ],
    ids=["ref", "environment-first", "pull-request"],
)
def test_github_subject_follows_githubs_precedence(
    job: GitHubJob, subject: str
) -> None:
    assert job.subject() == subject


# -- Test-control minting -----------------------------------------------------------


def test_gitlab_profile_has_gitlabs_claims(issuer: StandinIssuer) -> None:
    jwks = issuer.jwks()
    header, claims = _verify(issuer.mint("gitlab", AUDIENCE), jwks)

    assert header == {"alg": "RS256", "kid": _rsa_kid(jwks), "typ": "JWT"}
    assert set(claims) == GITLAB_CLAIMS
    assert claims["aud"] == AUDIENCE
    path = claims["project_path"]
    assert claims["sub"] == f"project_path:{path}:ref_type:branch:ref:main"
    assert claims["namespace_path"] == path.split("/")[0]
    assert claims["ref_protected"] == "true"


def test_kubernetes_profile_is_a_projected_service_account_token(
    issuer: StandinIssuer,
) -> None:
    jwks = issuer.jwks()
    header, claims = _verify(issuer.mint("kubernetes", AUDIENCE, ttl=600), jwks)

    assert header == {"alg": "RS256", "kid": _rsa_kid(jwks)}
    assert set(claims) == KUBERNETES_CLAIMS
    assert claims["aud"] == [AUDIENCE]
    identity = claims["kubernetes.io"]
    assert set(identity) == {"namespace", "serviceaccount", "pod"}
    assert set(identity["serviceaccount"]) == set(identity["pod"]) == {"name", "uid"}
    account = identity["serviceaccount"]["name"]
    namespace = identity["namespace"]
    assert claims["sub"] == f"system:serviceaccount:{namespace}:{account}"
    assert claims["exp"] - claims["iat"] == 600


def test_claims_are_overridden_and_deleted(issuer: StandinIssuer) -> None:
    overrides = {"sub": "repo:evil/repo:ref:refs/heads/main", "extra": [1, 2]}
    deletions = {"jti": None, "nbf": None, "not-there": None}
    token = issuer.mint("github", ["a", "b"], claims=overrides | deletions, ttl=-60)

    _, claims = _verify(token, issuer.jwks())
    assert set(claims) == GITHUB_CLAIMS - {"jti", "nbf"} | {"extra"}
    assert claims["sub"] == "repo:evil/repo:ref:refs/heads/main"
    assert claims["extra"] == [1, 2]
    assert claims["aud"] == ["a", "b"]
    assert claims["exp"] == claims["iat"] - 60


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_other_algorithms_sign_with_their_published_key(
    issuer: StandinIssuer, alg: str
) -> None:
    jwks = issuer.jwks()
    header, _ = _verify(issuer.mint("gitlab", AUDIENCE, alg=alg), jwks, alg)

    kid = next(key["kid"] for key in jwks["keys"] if key["alg"] == alg)
    assert header == {"alg": alg, "kid": kid, "typ": "JWT"}


def test_kid_header_can_be_replaced_or_left_out(issuer: StandinIssuer) -> None:
    assert _segment(issuer.mint("github", AUDIENCE, kid="nope"), 0)["kid"] == "nope"
    assert "kid" not in _segment(issuer.mint("github", AUDIENCE, kid=None), 0)


def test_hs256_token_is_keyed_with_the_rsa_public_key_pem(
    issuer: StandinIssuer,
) -> None:
    jwks = issuer.jwks()
    token = issuer.mint("github", AUDIENCE, alg="HS256")

    assert _segment(token, 0) == {"alg": "HS256", "kid": _rsa_kid(jwks), "typ": "JWT"}
    rsa = next(key for key in jwks["keys"] if key["alg"] == "RS256")
    pem = RSAKey.import_key(rsa).as_pem(private=False)
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "==") == expected
    with pytest.raises(JoseError):
        _verify(token, jwks, "RS256")


def test_none_token_is_unsigned(issuer: StandinIssuer) -> None:
    token = issuer.mint("kubernetes", AUDIENCE, alg="none", kid=None)

    assert token.endswith(".")
    assert _segment(token, 0) == {"alg": "none"}
    assert _segment(token, 1)["aud"] == [AUDIENCE]


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"audience": "a"}, "profile and audience are required"),
        ({"profile": "bitbucket", "audience": "a"}, "profile must be one of"),
        ({"profile": "github", "audience": 3}, "audience must be a string"),
        ({"profile": "github", "audience": "a", "alg": "RS512"}, "alg must be"),
        ({"profile": "github", "audience": "a", "ttl": "5"}, "ttl must be"),
        ({"profile": "github", "audience": "a", "claims": []}, "claims must be"),
        ({"profile": "github", "audience": "a", "key": "old"}, "key must be"),
        ({"profile": "github", "audience": "a", "typ": "x"}, "unknown members: typ"),
    ],
    ids=[
        "no-profile",
        "unknown-profile",
        "bad-audience",
        "unknown-alg",
        "bad-ttl",
        "bad-claims",
        "unknown-key",
        "unknown-member",
    ],
)
def test_mint_rejects_a_malformed_request(
    issuer: StandinIssuer, body: dict[str, Any], description: str
) -> None:
    response = httpx.post(issuer.url + "/mint", json=body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"].startswith(description)


def test_removed_key_is_refused_before_any_key_was_removed(
    issuer: StandinIssuer,
) -> None:
    body = {"profile": "github", "audience": "a", "key": "removed"}

    response = httpx.post(issuer.url + "/mint", json=body)

    assert response.status_code == 409


# -- Rotation ---------------------------------------------------------------------


def test_rotation_publishes_a_new_key_and_keeps_the_old(
    fresh_issuer: StandinIssuer,
) -> None:
    before = fresh_issuer.jwks()
    old_token = fresh_issuer.mint("github", AUDIENCE)

    published = fresh_issuer.rotate()

    after = fresh_issuer.jwks()
    assert published == [key["kid"] for key in after["keys"]]
    assert len(after["keys"]) == 6
    assert after["keys"][3:] == before["keys"]
    _verify(old_token, after)
    new_header, _ = _verify(fresh_issuer.mint("github", AUDIENCE), after)
    assert new_header["kid"] == _rsa_kid(after) != _rsa_kid(before)


def test_rotation_with_drop_old_unpublishes_the_old_key(
    fresh_issuer: StandinIssuer,
) -> None:
    before = fresh_issuer.jwks()

    fresh_issuer.rotate(drop_old=True)

    after = fresh_issuer.jwks()
    assert len(after["keys"]) == 3
    assert not {key["kid"] for key in before["keys"]} & {
        key["kid"] for key in after["keys"]
    }
    removed = fresh_issuer.mint("github", AUDIENCE, key="removed")
    header, _ = _verify(removed, before)
    assert header["kid"] == _rsa_kid(before)
    with pytest.raises(InvalidKeyIdError):
        _verify(removed, after)


# -- Faults and counters -------------------------------------------------------------


def test_jwks_down_answers_503_while_discovery_works(
    fresh_issuer: StandinIssuer,
) -> None:
    fresh_issuer.faults(jwks="down")

    assert httpx.get(fresh_issuer.url + "/.well-known/jwks").status_code == 503
    discovery = httpx.get(fresh_issuer.url + "/.well-known/openid-configuration")
    assert discovery.status_code == 200

    fresh_issuer.faults(jwks="ok")
    assert httpx.get(fresh_issuer.url + "/.well-known/jwks").status_code == 200


def test_jwks_garbage_is_not_json(fresh_issuer: StandinIssuer) -> None:
    fresh_issuer.faults(jwks="garbage")

    response = httpx.get(fresh_issuer.url + "/.well-known/jwks")

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_slow_jwks_times_out_a_one_second_client(
    fresh_issuer: StandinIssuer,
) -> None:
    fresh_issuer.faults(jwks="slow")

    with pytest.raises(httpx.TimeoutException):
        httpx.get(fresh_issuer.url + "/.well-known/jwks", timeout=1)


def test_request_counters_count_jwks_and_discovery_only(
    fresh_issuer: StandinIssuer,
) -> None:
    assert fresh_issuer.requests() == {"jwks": 0, "discovery": 0}

    fresh_issuer.jwks()
    fresh_issuer.jwks()
    httpx.get(fresh_issuer.url + "/.well-known/openid-configuration")
    fresh_issuer.github_token(AUDIENCE)
    fresh_issuer.mint("gitlab", AUDIENCE)

    assert fresh_issuer.requests() == {"jwks": 2, "discovery": 1}
    httpx.delete(fresh_issuer.url + "/requests")
    assert fresh_issuer.requests() == {"jwks": 0, "discovery": 0}
