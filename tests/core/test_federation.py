"""Trust policies: conditions, subject templates, and refusing policies that
would let a whole platform in."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tessera.core.federation import (
    Condition,
    PolicyError,
    TrustPolicy,
    check_policy,
    claim_value,
)

GITHUB_CLAIMS: dict[str, Any] = {
    "iss": "https://token.actions.githubusercontent.com",
    "aud": "https://tessera.example",
    "sub": "repo:acme/deploy:ref:refs/heads/main",
    "repository": "acme/deploy",
    "repository_owner": "acme",
    "ref": "refs/heads/main",
    "event_name": "push",
    "run_attempt": "1",
}
K8S_CLAIMS: dict[str, Any] = {
    "iss": "https://kubernetes.default.svc",
    "aud": ["tessera"],
    "sub": "system:serviceaccount:payments:api",
    "kubernetes.io": {
        "namespace": "payments",
        "serviceaccount": {"name": "api", "uid": "5f1c"},
    },
}


def policy(**fields: Any) -> TrustPolicy:
    base = TrustPolicy(
        name="deploy",
        issuer="https://token.actions.githubusercontent.com",
        audience="https://tessera.example",
        conditions=(Condition("repository", "equals", ("acme/deploy",)),),
        scopes=frozenset({"deploy"}),
        audiences=("https://registry.example",),
        max_ttl=600,
        subject="{sub}",
        profile="github",
    )
    return dataclasses.replace(base, **fields)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("repository", "acme/deploy"),
        ("run_attempt", "1"),
        ("missing", None),
        ("repository/deeper", None),
    ],
)
def test_claim_paths_on_a_flat_token(path: str, expected: str | None) -> None:
    assert claim_value(GITHUB_CLAIMS, path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("kubernetes.io/namespace", "payments"),
        ("kubernetes.io/serviceaccount/name", "api"),
        ("kubernetes.io/serviceaccount", None),  # an object is not a value
        ("aud", None),  # nor is a list
    ],
)
def test_claim_paths_into_nested_claims(path: str, expected: str | None) -> None:
    assert claim_value(K8S_CLAIMS, path) == expected


def test_booleans_and_numbers_compare_as_their_json_text() -> None:
    claims = {"ref_protected": True, "project_id": 42}

    assert claim_value(claims, "ref_protected") == "true"
    assert claim_value(claims, "project_id") == "42"


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (Condition("ref", "equals", ("refs/heads/main",)), True),
        (Condition("ref", "equals", ("refs/heads/Main",)), False),
        (Condition("ref", "glob", ("refs/heads/*",)), True),
        (Condition("ref", "glob", ("refs/tags/v*",)), False),
        (Condition("ref", "glob", ("refs/heads/ma?n",)), True),
        (Condition("event_name", "one_of", ("push", "workflow_dispatch")), True),
        (Condition("event_name", "one_of", ("pull_request",)), False),
        (Condition("environment", "equals", ("prod",)), False),  # absent
    ],
)
def test_conditions(condition: Condition, holds: bool) -> None:
    assert condition.holds(GITHUB_CLAIMS) is holds


def test_a_glob_spans_slashes_in_a_ref() -> None:
    condition = Condition("ref", "glob", ("refs/heads/release/*",))

    assert condition.holds({"ref": "refs/heads/release/1.2/hotfix"})
    assert not condition.holds({"ref": "refs/heads/main"})


def test_first_failure_names_what_did_not_match() -> None:
    strict = policy(
        conditions=(
            Condition("repository", "equals", ("acme/deploy",)),
            Condition("ref", "equals", ("refs/heads/release",)),
        )
    )

    assert policy().first_failure(GITHUB_CLAIMS) is None
    assert strict.first_failure(GITHUB_CLAIMS) == "condition on ref"
    wrong_audience = {**GITHUB_CLAIMS, "aud": "https://elsewhere.example"}
    assert policy().first_failure(wrong_audience) == "audience"
    listed = {**GITHUB_CLAIMS, "aud": ["x", "https://tessera.example"]}
    assert policy().first_failure(listed) is None


def test_the_subject_is_rendered_from_claims() -> None:
    templated = policy(subject="github:{repository}@{ref}")

    assert templated.subject_for(GITHUB_CLAIMS) == "github:acme/deploy@refs/heads/main"
    assert templated.subject_for({"repository": "acme/deploy"}) is None
    assert templated.first_failure({**GITHUB_CLAIMS, "ref": None}) == (
        "subject template"
    )


def test_a_narrow_policy_for_each_profile_is_accepted() -> None:
    check_policy(policy())
    check_policy(
        policy(
            profile="github",
            conditions=(Condition("repository", "glob", ("acme/*",)),),
        )
    )
    check_policy(
        policy(
            profile="gitlab",
            issuer="https://gitlab.com",
            conditions=(Condition("project_path", "equals", ("acme/app",)),),
        )
    )
    check_policy(
        policy(
            profile="kubernetes",
            issuer="https://kubernetes.default.svc",
            conditions=(
                Condition("sub", "glob", ("system:serviceaccount:payments:*",)),
            ),
        )
    )


@pytest.mark.parametrize(
    ("profile", "conditions", "message"),
    [
        ("github", (), "no condition pins down a repository or owner"),
        (
            "github",
            (Condition("ref", "equals", ("refs/heads/main",)),),
            "no condition pins down a repository or owner",
        ),
        (
            "github",
            (Condition("repository", "glob", ("*",)),),
            "no condition pins down a repository or owner",
        ),
        (
            "github",
            (Condition("repository", "glob", ("*/deploy",)),),
            "no condition pins down a repository or owner",
        ),
        (
            "gitlab",
            (Condition("ref_type", "equals", ("branch",)),),
            "no condition pins down a project or group",
        ),
        (
            "kubernetes",
            (Condition("sub", "glob", ("system:serviceaccount:*:api",)),),
            "no condition pins down a namespace",
        ),
        (
            "kubernetes",
            (Condition("sub", "glob", ("system:serviceaccount:pay*:api",)),),
            "no condition pins down a namespace",
        ),
        (None, (), "no condition pins down a subject"),
    ],
)
def test_a_policy_that_lets_everyone_in_is_refused_unless_forced(
    profile: str | None, conditions: tuple[Condition, ...], message: str
) -> None:
    broad = policy(profile=profile, conditions=conditions)

    with pytest.raises(PolicyError, match=message) as refused:
        check_policy(broad)
    assert "--force" in str(refused.value)
    check_policy(broad, force=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "has space"}, "the name must be"),
        ({"issuer": "http://ci.example"}, "https URL"),
        ({"audience": ""}, "audience the external token must carry"),
        ({"audiences": ()}, "at least one audience"),
        ({"max_ttl": 0}, "max_ttl"),
        ({"profile": "jenkins"}, "unknown profile"),
        (
            {"conditions": (Condition("project_path", "equals", ("a/b",)),)},
            "the github profile has no claim 'project_path'",
        ),
    ],
)
def test_policies_that_cannot_work_are_refused(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        check_policy(policy(**fields), force=True)


def test_a_fixed_subject_is_refused_unless_forced() -> None:
    fixed = policy(subject="deployer")

    with pytest.raises(PolicyError, match="every workload would get the same sub"):
        check_policy(fixed)
    check_policy(fixed, force=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"match": "equals", "values": ["x"]}, "names no claim"),
        ({"claim": "ref", "match": "regex", "values": ["x"]}, "match must be"),
        ({"claim": "ref", "match": "equals", "values": []}, "has no values"),
        ({"claim": "ref", "match": "equals", "values": [1]}, "not a string"),
        ({"claim": "ref", "match": "equals", "values": ["a", "b"]}, "one value"),
    ],
)
def test_stored_conditions_are_checked(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Condition.from_dict(data)


def test_conditions_round_trip() -> None:
    condition = Condition("event_name", "one_of", ("push", "workflow_dispatch"))

    assert Condition.from_dict(condition.to_dict()) == condition
