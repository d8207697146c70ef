"""Workload identity federation over HTTP: a real ``tessera serve`` and a
real stand-in issuer process playing GitHub Actions, GitLab CI and a
Kubernetes cluster. Every policy feature and every bad input of the
federation issue, with exact statuses, errors and audit events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tessera.core.exchange import JWT_BEARER, TOKEN_EXCHANGE
from tessera.core.federation import Condition, TrustPolicy, check_policy
from tessera.node import open_node
from tessera.store.policies import PolicyRepository
from tessera.verify import Verifier
from tests.standin_issuer import StandinIssuer, running_standin
from tests.support import RunningServer, running, within

EXTERNAL_AUDIENCE = "https://tessera.example"
API = "https://registry.example"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
# A server of the test's own, stopped however the test ends.
serving = contextlib.contextmanager(running)
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture(scope="module")
def issuer() -> Iterator[StandinIssuer]:
    yield from running_standin("--repository", "acme/deploy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from running(
        tmp_path_factory.mktemp("federation"),
        TESSERA_RATE_LIMIT_PER_SOURCE="0",
        TESSERA_MAX_TOKEN_TTL="3600",
    )


def add_policy(server: RunningServer, policy: TrustPolicy) -> TrustPolicy:
    check_policy(policy, force=policy.profile is None)

    async def go() -> None:
        node = await open_node(server.settings, time.time)
        try:
            await PolicyRepository(node.sessions).create(policy)
        finally:
            await node.close()

    asyncio.run(go())
    # The server reloads its policies at its next change poll (50 ms here).
    time.sleep(0.3)
    return policy


def github_policy(issuer: StandinIssuer, name: str, **fields: Any) -> TrustPolicy:
    values: dict[str, Any] = {
        "name": name,
        "issuer": issuer.url,
        "audience": EXTERNAL_AUDIENCE,
        "conditions": (
            Condition("repository", "equals", (f"acme/{name}",)),
            Condition("ref", "glob", ("refs/heads/*",)),
        ),
        "scopes": frozenset({"deploy", "read"}),
        "audiences": (API, "https://other.example"),
        "max_ttl": 600,
        "subject": "github:{repository}",
        "profile": "github",
    }
    return TrustPolicy(**{**values, **fields})


def exchange(server: RunningServer, subject_token: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": JWT_TYPE,
        **form,
    }
    return httpx.post(server.url("/oauth2/token"), data=data, timeout=30)


def github(issuer: StandinIssuer, repository: str, **claims: Any) -> str:
    return issuer.mint(
        "github",
        EXTERNAL_AUDIENCE,
        {"repository": repository, "repository_owner": "acme", **claims},
    )


def audit_events(server: RunningServer, event: str) -> list[dict[str, Any]]:
    found = []
    for line in server.audit_lines():
        if line.startswith("{") and f'"event":"{event}"' in line:
            found.append(json.loads(line))
    return found


def last_denial(server: RunningServer) -> dict[str, Any]:
    """The newest denial, once the audit writer (which flushes every 50 ms)
    has written the one the last request caused."""
    return last_event(server, "token.denied")


def last_event(server: RunningServer, event: str) -> dict[str, Any]:
    time.sleep(0.2)
    return audit_events(server, event)[-1]


def assert_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in body
    return dict(body)


# A match, and what the issued token says.


def test_a_github_job_token_is_exchanged_for_a_tessera_token(
    server: RunningServer, issuer: StandinIssuer
) -> None:
    add_policy(server, github_policy(issuer, "shipit"))
    external = github(issuer, "acme/shipit")

    response = exchange(server, external, audience=API, scope="deploy")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "access_token",
        "issued_token_type",
        "token_type",
        "expires_in",
        "scope",
    }
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert (body["token_type"], body["scope"]) == ("Bearer", "deploy")
    assert body["expires_in"] == 600
    jwks = httpx.get(server.url("/oauth2/jwks")).json()
    verifier = Verifier.from_jwks(server.base_url, API, jwks)
    claims = asyncio.run(verifier.verify(body["access_token"])).claims
    external_claims = jwt.decode(external, options={"verify_signature": False})
    assert claims["sub"] == "github:acme/shipit"
    assert claims["client_id"] == "policy:shipit"
    assert claims["trust_policy"] == "shipit"
    assert claims["act"] == {"iss": issuer.url, "sub": external_claims["sub"]}
    assert claims["aud"] == API
    issued = last_event(server, "token.issued")
    assert issued["policy"] == "shipit"
    assert issued["external_subject"] == external_claims["sub"]
    assert issued["external_issuer"] == issuer.url
    assert issued["grant_type"] == TOKEN_EXCHANGE
    assert external not in server.log_path.read_text()


def test_the_github_request_token_protocol_and_id_token_type(
    server: RunningServer, issuer: StandinIssuer
) -> None:
    # The stand-in's configured job is acme/deploy on refs/heads/main.
    add_policy(server, github_policy(issuer, "deploy"))
    external = issuer.github_token(EXTERNAL_AUDIENCE)

    response = exchange(server, external, subject_token_type=ID_TOKEN_TYPE)

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "deploy read"


def test_the_jwt_bearer_grant_uses_the_same_policies(
    server: RunningServer, issuer: StandinIssuer
) -> None:
    add_policy(server, github_policy(issuer, "bearer"))
    form = {"grant_type": JWT_BEARER, "assertion": github(issuer, "acme/bearer")}

    response = httpx.post(server.url("/oauth2/token"), data=form)

    assert response.status_code == 200, response.text
    assert "issued_token_type" not in response.json()


def test_gitlab_and_kubernetes_profiles(
    server: RunningServer, issuer: StandinIssuer
) -> None:
    add_policy(
        server,
        TrustPolicy(
            name="gitlab-app",
            issuer=issuer.url,
            audience=EXTERNAL_AUDIENCE,
            conditions=(
                Condition("project_path", "equals", ("acme/app",)),
                Condition("ref_type", "equals", ("branch",)),
            ),
            scopes=frozenset({"read"}),
            audiences=(API,),
            max_ttl=300,
            subject="{sub}",
            profile="gitlab",
        ),
    )
    add_policy(
        server,
        TrustPolicy(
            name="k8s-payments",
            issuer=issuer.url,
            audience="tessera",
            conditions=(
                Condition("sub", "equals", ("system:serviceaccount:payments:api",)),
            ),
            scopes=frozenset({"read"}),
            audiences=(API,),
            max_ttl=300,
            subject="k8s:{kubernetes.io/namespace}/{kubernetes.io/serviceaccount/name}",
            profile="kubernetes",
        ),
    )
    gitlab = issuer.mint(
        "gitlab", EXTERNAL_AUDIENCE, {"project_path": "acme/app", "ref_type": "branch"}
    )
    service_account = issuer.mint(
        "kubernetes",
        ["tessera"],
        {
            "sub": "system:serviceaccount:payments:api",
            "kubernetes.io": {
                "namespace": "payments",
                "serviceaccount": {"name": "api", "uid": "1"},
            },
        },
    )

    from_gitlab = exchange(server, gitlab)
    from_cluster = exchange(server, service_account)

    assert from_gitlab.status_code == 200, from_gitlab.text
    assert from_cluster.status_code == 200, from_cluster.text
    claims = jwt.decode(
        from_cluster.json()["access_token"], options={"verify_signature": False}
    )
    assert claims["sub"] == "k8s:payments/api"
    assert claims["exp"] - claims["iat"] == 300


# Narrowing: scope, audience and resource only narrow what a policy grants.


@pytest.fixture(scope="module")
def narrowing(server: RunningServer, issuer: StandinIssuer) -> str:
    add_policy(server, github_policy(issuer, "narrow"))
    return "acme/narrow"


@pytest.mark.parametrize(
    ("form", "status", "outcome"),
    [
        ({}, 200, ("deploy read", [API, "https://other.example"])),
        ({"scope": "read"}, 200, ("read", [API, "https://other.example"])),
        ({"resource": API}, 200, ("deploy read", API)),
        ({"audience": "https://other.example"}, 200, ("deploy read", None)),
        ({"scope": "admin"}, 400, "invalid_scope"),
        ({"scope": "read admin"}, 400, "invalid_scope"),
        ({"audience": "https://elsewhere.example"}, 400, "invalid_target"),
        ({"resource": "not a uri"}, 400, "invalid_target"),
    ],
)
def test_scope_audience_and_resource_only_narrow(
    server: RunningServer,
    issuer: StandinIssuer,
    narrowing: str,
    form: dict[str, str],
    status: int,
    outcome: Any,
) -> None:
    response = exchange(server, github(issuer, narrowing), **form)

    if status != 200:
        assert_error(response, status, outcome)
        return
    assert response.status_code == 200, response.text
    scope, audience = outcome
    claims = jwt.decode(
        response.json()["access_token"], options={"verify_signature": False}
    )
    assert claims["scope"] == scope
    if audience is not None:
        assert claims["aud"] == audience


# Bad input: the RFC's error, never a token, an audit event naming policies.


@pytest.fixture(scope="module")
def guarded(server: RunningServer, issuer: StandinIssuer) -> str:
    add_policy(server, github_policy(issuer, "guarded"))
    return "acme/guarded"


def refused(server: RunningServer, token: str, detail: str) -> dict[str, Any]:
    response = exchange(server, token)

    body = assert_error(response, 400, "invalid_request")
    assert body["error_description"] == (
        "The subject token is invalid or not acceptable."
    )
    denial = last_denial(server)
    assert denial["error"] == "invalid_request"
    assert detail in denial["reason"], denial
    return denial


def test_an_expired_token(
    server: RunningServer, issuer: StandinIssuer, guarded: str
) -> None:
    token = issuer.mint(
        "github",
        EXTERNAL_AUDIENCE,
        {"repository": guarded, "exp": int(time.time()) - 600},
    )
    denial = refused(server, token, "expired")
    assert "guarded" in denial["policies"]


def test_a_token_not_yet_valid(
    server: RunningServer, issuer: StandinIssuer, guarded: str
) -> None:
    token = issuer.mint(
        "github",
        EXTERNAL_AUDIENCE,
        {"repository": guarded, "nbf": int(time.time()) + 600},
    )
    refused(server, token, "not yet valid")


def test_an_unsigned_token(
    server: RunningServer, issuer: StandinIssuer, guarded: str
) -> None:
    token = issuer.mint(
        "github", EXTERNAL_AUDIENCE, {"repository": guarded}, alg="none"
    )
    # An empty signature segment: refused before any key is looked at.
    refused(server, token, "empty segment")


def test_an_hmac_token_keyed_with_the_issuers_public_key(
    server: RunningServer, issuer: StandinIssuer, guarded: str
) -> None:
    token = issuer.mint(
        "github", EXTERNAL_AUDIENCE, {"repository": guarded}, alg="HS256"
    )
    refused(server, token, "HS256")


def test_an_unknown_issuer(server: RunningServer, issuer: StandinIssuer) -> None:
    token = issuer.mint(
        "github", EXTERNAL_AUDIENCE, {"iss": "https://ci.attacker.example"}
    )
    denial = refused(server, token, "no trust policy for the issuer")
    assert denial["policies"] == []
    assert denial["claimed_issuer"] == "https://ci.attacker.example"
    assert denial["external_issuer"] is None


def test_a_wrong_audience_names_the_policies_tried(
    server: RunningServer, issuer: StandinIssuer, guarded: str
) -> None:
    token = issuer.mint(
        "github", "https://someone-else.example", {"repository": guarded}
    )

    denial = refused(server, token, "guarded: audience")

    assert "guarded" in denial["policies"]
    assert denial["external_issuer"] == issuer.url


def test_a_claim_that_fails_a_condition(
    server: RunningServer, issuer: StandinIssuer, guarded: str
) -> None:
    token = github(issuer, guarded, ref="refs/tags/v1")

    denial = refused(server, token, "guarded: condition on ref")

    assert denial["external_subject"] is not None


def test_a_subject_token_of_a_megabyte(server: RunningServer) -> None:
    response = exchange(server, "eyJ" + "A" * (1024 * 1024))

    assert_error(response, 413, "invalid_request")


@pytest.mark.parametrize(
    ("form", "description"),
    [
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"}, "jwt or"),
        ({"requested_token_type": "urn:x:refresh"}, "Only access tokens"),
        ({"actor_token": "x", "actor_token_type": JWT_TYPE}, "actor_token"),
    ],
)
def test_unsupported_exchange_parameters(
    server: RunningServer,
    issuer: StandinIssuer,
    guarded: str,
    form: dict[str, str],
    description: str,
) -> None:
    response = exchange(server, github(issuer, guarded), **form)

    body = assert_error(response, 400, "invalid_request")
    assert description in body["error_description"]


def test_a_missing_subject_token(server: RunningServer) -> None:
    form = {"grant_type": TOKEN_EXCHANGE, "subject_token_type": JWT_TYPE}

    response = httpx.post(server.url("/oauth2/token"), data=form)

    body = assert_error(response, 400, "invalid_request")
    assert body["error_description"] == "The subject_token parameter is missing."


def test_a_bad_assertion_is_invalid_grant_in_the_jwt_bearer_grant(
    server: RunningServer, issuer: StandinIssuer, guarded: str
) -> None:
    token = github(issuer, guarded, ref="refs/tags/v1")
    form = {"grant_type": JWT_BEARER, "assertion": token}

    response = httpx.post(server.url("/oauth2/token"), data=form)

    assert_error(response, 400, "invalid_grant")


# The issuer's keys: rotation, removal, and its JWKS endpoint failing.


def test_keys_are_not_fetched_per_request_and_rotation_is_followed(
    tmp_path: Path,
) -> None:
    with (
        StandinIssuer() as rotating,
        serving(
            tmp_path / "rotating", TESSERA_EXTERNAL_JWKS_REFETCH_INTERVAL="1"
        ) as node,
    ):
        add_policy(node, github_policy(rotating, "rotating"))
        for _ in range(20):
            response = exchange(node, github(rotating, "acme/rotating"))
            assert response.status_code == 200, last_denial(node)
        assert rotating.requests()["jwks"] == 1

        # The issuer rotates and signs with its new key at once. An unknown
        # kid triggers a refetch, at most one per refetch interval (1 s here)
        # after the last: the new key is found within it.
        rotating.rotate()
        within(
            2.0,
            lambda: (
                exchange(node, github(rotating, "acme/rotating")).status_code == 200
            ),
        )
        assert rotating.requests()["jwks"] == 2

        # A key dropped from the issuer's set stops working once the set is
        # fetched again: a token signed with it is refused.
        rotating.rotate(drop_old=True)
        within(
            2.0,
            lambda: (
                exchange(node, github(rotating, "acme/rotating")).status_code == 200
            ),
        )
        removed = rotating.mint(
            "github",
            EXTERNAL_AUDIENCE,
            {"repository": "acme/rotating", "repository_owner": "acme"},
            key="removed",
        )
        refused(node, removed, "unknown kid")


@pytest.mark.parametrize("fault", ["down", "slow", "garbage"])
def test_an_issuer_whose_keys_cannot_be_had(tmp_path: Path, fault: str) -> None:
    with (
        StandinIssuer() as failing,
        serving(tmp_path / fault) as node,
    ):
        add_policy(node, github_policy(failing, "failing"))
        failing.faults(jwks=fault)

        response = exchange(node, github(failing, "acme/failing"))

        body = assert_error(response, 503, "temporarily_unavailable")
        assert response.headers["retry-after"] == "5"
        assert "access_token" not in body
        assert last_denial(node)["error"] == "temporarily_unavailable"


# What the issued token stays tied to.


def test_a_disabled_policy_matches_nothing_and_its_tokens_turn_inactive(
    server: RunningServer, issuer: StandinIssuer
) -> None:
    add_policy(server, github_policy(issuer, "retiring"))
    resource = server.create_client(
        "registry-api", audiences=(API,), may_introspect=True
    )
    issued = exchange(server, github(issuer, "acme/retiring")).json()["access_token"]

    def introspect() -> dict[str, Any]:
        return dict(
            httpx.post(
                server.url("/oauth2/introspect"),
                data={"token": issued},
                auth=("registry-api", resource),
            ).json()
        )

    assert introspect()["active"] is True

    async def disable() -> None:
        node = await open_node(server.settings, time.time)
        try:
            repository = PolicyRepository(node.sessions)
            policy = await repository.get("retiring")
            assert policy is not None
            await repository.save(dataclasses.replace(policy, disabled=True))
        finally:
            await node.close()

    asyncio.run(disable())
    time.sleep(0.3)

    assert introspect() == {"active": False}
    denial = refused(server, github(issuer, "acme/retiring"), "no policy matched")
    assert "retiring" not in denial["policies"]
