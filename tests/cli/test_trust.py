"""``tessera trust``: trust policies added, refused, changed and removed
through the real command, and read back from the store."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tessera.core.federation import Condition, TrustPolicy
from tessera.store.policies import PolicyRepository
from tests.cli.conftest import Tessera, make_tessera

GITHUB = "https://token.actions.githubusercontent.com"
BROAD_GITHUB = (
    "Error: no condition pins down a repository or owner: every workload of "
    "the issuer would match; add one, or use --force if that is meant"
)

Results = dict[str, subprocess.CompletedProcess[str]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _ec_jwk(kid: str, private: bool = False) -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.private_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "x": _b64(numbers.public_numbers.x.to_bytes(32)),
        "y": _b64(numbers.public_numbers.y.to_bytes(32)),
    }
    if private:
        jwk["d"] = _b64(numbers.private_value.to_bytes(32))
    return jwk


def _equals(claim: str, value: str) -> Condition:
    return Condition(claim, "equals", (value,))


def _glob(claim: str, value: str) -> Condition:
    return Condition(claim, "glob", (value,))


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    tessera = make_tessera(tmp_path_factory, "cli-trust")
    # The store and master key exist before commands run side by side.
    tessera.ensure_key("ES256")
    return tessera


def stored(tessera: Tessera, name: str) -> TrustPolicy | None:
    return asyncio.run(tessera._with_store(lambda s: PolicyRepository(s).get(name)))


@pytest.fixture(scope="module")
def jwks_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("jwks")
    documents: dict[str, Any] = {
        "public": {"keys": [_ec_jwk("pinned-1"), _ec_jwk("pinned-2")]},
        "private": {"keys": [_ec_jwk("pinned-1"), _ec_jwk("secret", private=True)]},
        "symmetric": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        "not a key set": {"kid": "x"},
        "no usable key": {"keys": [{"kty": "EC", "crv": "P-384", "x": "AA"}]},
    }
    files = {}
    for name, document in documents.items():
        files[name] = base / f"{name.replace(' ', '-')}.json"
        files[name].write_text(json.dumps(document))
    files["not json"] = base / "not-json.json"
    files["not json"].write_text("-----BEGIN PRIVATE KEY-----\n")
    files["missing"] = base / "missing.json"
    return files


def _add(name: str, profile: str, *args: str) -> list[str]:
    return [
        "trust", "add", name,
        "--profile", profile,
        "--external-audience", "https://tessera.example",
        "--audience", "https://api.example",
        *args,
    ]  # fmt: skip


K8S = ("--issuer", "https://k8s.example")

# fmt: off
# Each case: the arguments, and the policy it must store.
ADDED: dict[str, tuple[list[str], dict[str, Any]]] = {
    "github": (
        _add(
            "gh-deploy", "github",
            "--scope", "deploy read", "--scope", "admin",
            "--audience", "urn:ledger",
            "--repository", "octo/app",
            "--ref", "refs/heads/release/*",
            "--environment", "prod",
            "--job-workflow-ref", "octo/wf/.github/workflows/d.yml@refs/heads/main",
            "--event-name", "push",
            "--max-ttl", "600",
            "--subject", "gh:{repository}:{sub}",
        ),
        {
            "issuer": GITHUB,
            "conditions": (
                _equals("repository", "octo/app"),
                _glob("ref", "refs/heads/release/*"),
                _equals("environment", "prod"),
                _equals(
                    "job_workflow_ref",
                    "octo/wf/.github/workflows/d.yml@refs/heads/main",
                ),
                _equals("event_name", "push"),
            ),
            "scopes": frozenset({"admin", "deploy", "read"}),
            "audiences": ("https://api.example", "urn:ledger"),
            "max_ttl": 600,
            "subject": "gh:{repository}:{sub}",
        },
    ),
    "github owner and generic conditions": (
        _add(
            "gh-owner", "github",
            "--repository-owner", "octo",
            "--claim", "ref=refs/heads/main",
            "--claim-glob", "repository=octo/svc-*",
            "--claim-in", "event_name=push,workflow_dispatch",
        ),
        {
            "issuer": GITHUB,
            "conditions": (
                _equals("repository_owner", "octo"),
                _equals("ref", "refs/heads/main"),
                _glob("repository", "octo/svc-*"),
                Condition("event_name", "one_of", ("push", "workflow_dispatch")),
            ),
        },
    ),
    "gitlab": (
        _add(
            "gl-deploy", "gitlab",
            "--project-path", "group/project",
            "--namespace-path", "group",
            "--ref", "main",
            "--ref-type", "branch",
            "--environment", "production",
        ),
        {
            "issuer": "https://gitlab.com",
            "conditions": (
                _equals("project_path", "group/project"),
                _equals("namespace_path", "group"),
                _equals("ref", "main"),
                _equals("ref_type", "branch"),
                _equals("environment", "production"),
            ),
        },
    ),
    "gitlab self-managed": (
        _add(
            "gl-self", "gitlab",
            "--issuer", "https://gitlab.internal.example",
            "--namespace-path", "platform/*",
        ),
        {
            "issuer": "https://gitlab.internal.example",
            "conditions": (_glob("namespace_path", "platform/*"),),
        },
    ),
    "kubernetes service account": (
        _add(
            "k8s-deployer", "kubernetes", *K8S,
            "--namespace", "prod", "--service-account", "deployer",
        ),
        {
            "issuer": "https://k8s.example",
            "conditions": (_equals("sub", "system:serviceaccount:prod:deployer"),),
        },
    ),
    "kubernetes service account glob": (
        _add(
            "k8s-web", "kubernetes", *K8S,
            "--namespace", "prod", "--service-account", "web-*",
        ),
        {
            "issuer": "https://k8s.example",
            "conditions": (_glob("sub", "system:serviceaccount:prod:web-*"),),
        },
    ),
    "kubernetes namespace glob": (
        _add(
            "k8s-teams", "kubernetes", *K8S,
            "--namespace", "team-*", "--service-account", "deployer",
        ),
        {
            "issuer": "https://k8s.example",
            "conditions": (
                _glob("kubernetes.io/namespace", "team-*"),
                _equals("kubernetes.io/serviceaccount/name", "deployer"),
            ),
        },
    ),
    "kubernetes namespace": (
        _add("k8s-ns", "kubernetes", *K8S, "--namespace", "prod"),
        {
            "issuer": "https://k8s.example",
            "conditions": (_equals("kubernetes.io/namespace", "prod"),),
        },
    ),
    "no profile": (
        _add(
            "oidc", "none",
            "--issuer", "https://idp.example",
            "--claim", "sub=svc-1",
            "--claim-glob", "email=*@example.com",
            "--claim-in", "tenant=a,b",
        ),
        {
            "issuer": "https://idp.example",
            "conditions": (
                _equals("sub", "svc-1"),
                _glob("email", "*@example.com"),
                Condition("tenant", "one_of", ("a", "b")),
            ),
            "profile": None,
        },
    ),
    "broad, forced": (
        _add("gh-broad", "github", "--ref", "refs/heads/main", "--force"),
        {"issuer": GITHUB, "conditions": (_equals("ref", "refs/heads/main"),)},
    ),
}

# Each case: the arguments, and the last line of stderr.
REFUSED: dict[str, tuple[list[str], str]] = {
    "github without repository": (
        _add("r1", "github", "--ref", "refs/heads/main", "--environment", "prod"),
        BROAD_GITHUB,
    ),
    "github any repository": (_add("r2", "github", "--repository", "*"), BROAD_GITHUB),
    "github any owner": (
        _add("r3", "github", "--claim-glob", "repository_owner=*"),
        BROAD_GITHUB,
    ),
    "gitlab without project": (
        _add("r4", "gitlab", "--ref-type", "tag"),
        "Error: no condition pins down a project or group: every workload of the "
        "issuer would match; add one, or use --force if that is meant",
    ),
    "kubernetes any namespace": (
        _add("r5", "kubernetes", *K8S, "--namespace", "*"),
        "Error: no condition pins down a namespace: every workload of the issuer "
        "would match; add one, or use --force if that is meant",
    ),
    "kubernetes account only": (
        _add(
            "r6", "kubernetes", *K8S,
            "--claim", "kubernetes.io/serviceaccount/name=x",
        ),
        "Error: no condition pins down a namespace: every workload of the issuer "
        "would match; add one, or use --force if that is meant",
    ),
    "no profile, no condition": (
        _add("r7", "none", "--issuer", "https://idp.example"),
        "Error: no condition pins down a subject: every workload of the issuer "
        "would match; add one, or use --force if that is meant",
    ),
    "fixed subject": (
        _add("r8", "github", "--repository", "octo/app", "--subject", "deployer"),
        "Error: the subject template names no claim, so every workload would get "
        "the same sub; use --force if that is meant",
    ),
    "claim outside the profile": (
        _add("r9", "github", "--repository", "octo/app", "--claim", "email=a@b"),
        "Error: the github profile has no claim 'email'; its claims are "
        "environment, event_name, job_workflow_ref, ref, repository, "
        "repository_owner, sub",
    ),
    "plain http issuer": (
        _add("r10", "none", "--issuer", "http://idp.example", "--claim", "sub=a"),
        "Error: the issuer must be an https URL (http only on loopback)",
    ),
    "bad name": (
        _add("bad name", "github", "--repository", "octo/app"),
        "Error: the name must be 1-64 letters, digits, '.', '_' or '-'",
    ),
}

# Each case: the arguments, and the last line of stderr (exit status 2).
MISUSED: dict[str, tuple[list[str], str]] = {
    "github option, gitlab profile": (
        _add("u1", "gitlab", "--repository", "octo/app"),
        "Error: --repository is for the github profile, not gitlab; "
        "use --claim for other claims",
    ),
    "kubernetes option, github profile": (
        _add("u2", "github", "--repository", "octo/app", "--namespace", "prod"),
        "Error: --namespace is for the kubernetes profile, not github; "
        "use --claim for other claims",
    ),
    "ci option, kubernetes profile": (
        _add("u3", "kubernetes", *K8S, "--namespace", "prod", "--ref", "main"),
        "Error: --ref is for the github or gitlab profile, not kubernetes; "
        "use --claim for other claims",
    ),
    "gitlab option, no profile": (
        _add("u4", "none", "--issuer", "https://idp.example", "--project-path", "g/p"),
        "Error: --project-path is for the gitlab profile, not none; "
        "use --claim for other claims",
    ),
    "service account without namespace": (
        _add("u5", "kubernetes", *K8S, "--service-account", "deployer"),
        "Error: --service-account needs --namespace",
    ),
    "service account glob in any namespace": (
        _add(
            "u6", "kubernetes", *K8S,
            "--namespace", "team-*", "--service-account", "web-*",
        ),
        "Error: --service-account may be a glob only when --namespace is fixed",
    ),
    "kubernetes without issuer": (
        _add("u7", "kubernetes", "--namespace", "prod"),
        "Error: the kubernetes profile has no usual issuer; give --issuer",
    ),
    "claim without value": (
        _add("u8", "github", "--repository", "octo/app", "--claim", "ref"),
        "Error: Invalid value for '--claim': 'ref' is not CLAIM=VALUE",
    ),
    "empty value in a set": (
        _add("u9", "github", "--repository", "octo/app", "--claim-in", "ref=a,,b"),
        "Error: Invalid value for --claim-in: ref='a,,b' has an empty value",
    ),
    "no external audience": (
        ["trust", "add", "u10", "--profile", "github", "--audience", "urn:a",
         "--repository", "octo/app"],
        "Error: Missing option '--external-audience'.",
    ),
    "empty profile option": (
        _add("u12", "github", "--repository", ""),
        "Error: Invalid value for --repository: must not be empty",
    ),
    "colon in a service account": (
        _add(
            "u13", "kubernetes", *K8S,
            "--namespace", "prod", "--service-account", "a:b",
        ),
        "Error: a namespace or service account name holds no ':'",
    ),
    "unknown profile": (
        _add("u11", "jenkins"),
        "Error: Invalid value for '--profile': 'jenkins' is not one of "
        "'github', 'gitlab', 'kubernetes', 'none'.",
    ),
}
# fmt: on

BAD_JWKS = {
    "private": "key 1 of {path} is private; pin public keys only",
    "symmetric": "key 0 of {path} is private; pin public keys only",
    "not json": "{path} is not JSON",
    "not a key set": "{path}: not a JWK Set",
    "no usable key": "{path}: no usable signing key",
    "missing": "cannot read {path} (No such file or directory)",
}


@pytest.fixture(scope="module")
def results(tessera: Tessera, jwks_files: dict[str, Path]) -> Results:
    """Every add of this module, side by side."""
    commands = {
        **{case: args for case, (args, _) in ADDED.items()},
        **{case: args for case, (args, _) in REFUSED.items()},
        **{case: args for case, (args, _) in MISUSED.items()},
        **{
            f"jwks {case}": _add(
                f"j{i}", "github", "--repository", "octo/app",
                "--pinned-jwks-file", str(jwks_files[case]),
            )
            for i, case in enumerate(BAD_JWKS)
        },
        "pinned": _add(
            "gh-pinned", "github", "--repository", "octo/app",
            "--pinned-jwks-file", str(jwks_files["public"]), "--json",
        ),
    }  # fmt: skip
    return tessera.run_many(commands)


@pytest.mark.parametrize("case", ADDED)
def test_add_stores_the_policy(tessera: Tessera, results: Results, case: str) -> None:
    args, fields = ADDED[case]

    result = results[case]

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    name = args[2]
    expected = TrustPolicy(
        **{
            "name": name,
            "audience": "https://tessera.example",
            "scopes": frozenset(),
            "audiences": ("https://api.example",),
            "max_ttl": None,
            "subject": "{sub}",
            "profile": args[4],
            **fields,
        }
    )
    assert stored(tessera, name) == expected


def test_add_prints_the_policy(results: Results) -> None:
    result = results["github"]

    assert result.stdout.splitlines() == [
        "name: gh-deploy",
        "profile: github",
        f"issuer: {GITHUB}",
        "external_audience: https://tessera.example",
        "conditions:",
        "  repository equals octo/app",
        "  ref glob refs/heads/release/*",
        "  environment equals prod",
        "  job_workflow_ref equals octo/wf/.github/workflows/d.yml@refs/heads/main",
        "  event_name equals push",
        "scopes: admin deploy read",
        "audiences: https://api.example urn:ledger",
        "max_ttl: 600",
        "subject: gh:{repository}:{sub}",
        "pinned_jwks:",
        "disabled: false",
    ]


@pytest.mark.parametrize("case", REFUSED)
def test_add_refuses_a_policy_check_policy_refuses(
    tessera: Tessera, results: Results, case: str
) -> None:
    args, error = REFUSED[case]

    result = results[case]

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == error + "\n"
    assert stored(tessera, args[2]) is None


@pytest.mark.parametrize("case", MISUSED)
def test_add_refuses_options_that_do_not_fit(
    tessera: Tessera, results: Results, case: str
) -> None:
    args, error = MISUSED[case]

    result = results[case]

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == error
    assert stored(tessera, args[2]) is None


@pytest.mark.parametrize("case", BAD_JWKS)
def test_add_refuses_a_bad_pinned_jwks(
    tessera: Tessera, results: Results, jwks_files: dict[str, Path], case: str
) -> None:
    path = jwks_files[case]

    result = results[f"jwks {case}"]

    assert result.returncode == 2
    assert result.stdout == ""
    error = BAD_JWKS[case].format(path=path)
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for --pinned-jwks-file: {error}"
    )
    assert stored(tessera, f"j{list(BAD_JWKS).index(case)}") is None


def test_a_private_pinned_key_is_never_echoed(
    results: Results, jwks_files: dict[str, Path]
) -> None:
    (private,) = [
        k for k in json.loads(jwks_files["private"].read_text())["keys"] if "d" in k
    ]

    result = results["jwks private"]

    assert private["d"] not in result.stdout + result.stderr
    assert private["x"] not in result.stdout + result.stderr


def test_add_pins_a_public_jwks(
    tessera: Tessera, results: Results, jwks_files: dict[str, Path]
) -> None:
    document = json.loads(jwks_files["public"].read_text())

    result = results["pinned"]

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pinned_jwks"] == document
    policy = stored(tessera, "gh-pinned")
    assert policy is not None
    assert policy.pinned_jwks is not None
    assert json.loads(policy.pinned_jwks) == document


def test_add_of_an_existing_name_fails(tessera: Tessera, results: Results) -> None:
    before = stored(tessera, "gh-deploy")

    result = tessera(*_add("gh-deploy", "github", "--repository", "other/app"))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "Error: trust policy gh-deploy already exists\n"
    assert stored(tessera, "gh-deploy") == before


def test_add_is_audited_without_key_material(
    tessera: Tessera, results: Results, jwks_files: dict[str, Path]
) -> None:
    events = {
        e["name"]: e for e in tessera.audit_events() if e["event"] == "policy.created"
    }

    assert {k: v for k, v in events["gh-deploy"].items() if k != "ts"} == {
        "event": "policy.created",
        "name": "gh-deploy",
        "profile": "github",
        "issuer": GITHUB,
        "conditions": [
            "repository equals octo/app",
            "ref glob refs/heads/release/*",
            "environment equals prod",
            "job_workflow_ref equals octo/wf/.github/workflows/d.yml@refs/heads/main",
            "event_name equals push",
        ],
        "pinned_jwks": False,
        "forced": False,
    }
    assert events["gh-broad"]["forced"] is True
    assert events["gh-pinned"]["pinned_jwks"] is True
    refused = [args[2] for args, _ in [*REFUSED.values(), *MISUSED.values()]]
    assert set(events) >= {args[2] for args, _ in ADDED.values()} | {"gh-pinned"}
    assert not set(events) & {*refused, *(f"j{i}" for i in range(len(BAD_JWKS)))}
    log = tessera.audit_log.read_text()
    for key in json.loads(jwks_files["public"].read_text())["keys"]:
        assert key["x"] not in log


def test_show_and_list(tessera: Tessera, results: Results) -> None:
    shown = tessera.run_many(
        {
            "show": ["trust", "show", "k8s-teams", "--json"],
            "list": ["trust", "list"],
            "list json": ["trust", "list", "--json"],
            "missing": ["trust", "show", "nope"],
        }
    )

    assert shown["show"].returncode == 0, shown["show"].stderr
    described = json.loads(shown["show"].stdout)
    assert described == {
        "name": "k8s-teams",
        "profile": "kubernetes",
        "issuer": "https://k8s.example",
        "external_audience": "https://tessera.example",
        "conditions": [
            {
                "claim": "kubernetes.io/namespace",
                "match": "glob",
                "values": ["team-*"],
            },
            {
                "claim": "kubernetes.io/serviceaccount/name",
                "match": "equals",
                "values": ["deployer"],
            },
        ],
        "scopes": [],
        "audiences": ["https://api.example"],
        "max_ttl": None,
        "subject": "{sub}",
        "pinned_jwks": None,
        "disabled": False,
    }
    listed = json.loads(shown["list json"].stdout)
    assert [p["name"] for p in listed] == sorted(p["name"] for p in listed)
    assert described in listed
    assert "k8s-teams\tenabled\tkubernetes\thttps://k8s.example" in (
        shown["list"].stdout.splitlines()
    )
    assert "oidc\tenabled\tnone\thttps://idp.example" in (
        shown["list"].stdout.splitlines()
    )
    assert shown["missing"].returncode == 1
    assert shown["missing"].stderr == "Error: no trust policy nope\n"


def _events(tessera: Tessera, name: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in e.items() if k != "ts"}
        for e in tessera.audit_events()
        if e.get("name") == name and e["event"] != "policy.created"
    ]


def test_update_keeps_conditions_unless_given(tessera: Tessera) -> None:
    assert tessera(*_add("upd", "github", "--repository", "octo/app")).returncode == 0

    result = tessera(
        "trust", "update", "upd",
        "--scope", "read", "--audience", "urn:new", "--max-ttl", "120", "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    policy = stored(tessera, "upd")
    assert policy is not None
    assert policy.conditions == (_equals("repository", "octo/app"),)
    assert (policy.scopes, policy.audiences, policy.max_ttl) == (
        frozenset({"read"}),
        ("urn:new",),
        120,
    )
    assert json.loads(result.stdout)["max_ttl"] == 120
    assert _events(tessera, "upd") == [
        {
            "event": "policy.updated",
            "name": "upd",
            "profile": "github",
            "issuer": GITHUB,
            "conditions": ["repository equals octo/app"],
            "pinned_jwks": False,
            "forced": False,
            "fields": ["audiences", "max_ttl", "scopes"],
        }
    ]


def test_update_replaces_conditions_when_one_is_given(tessera: Tessera) -> None:
    args = ("--repository", "octo/app", "--ref", "refs/heads/main")
    assert tessera(*_add("upd-cond", "github", *args)).returncode == 0

    result = tessera("trust", "update", "upd-cond", "--repository-owner", "octo")

    assert result.returncode == 0, result.stderr
    policy = stored(tessera, "upd-cond")
    assert policy is not None
    assert policy.conditions == (_equals("repository_owner", "octo"),)
    assert _events(tessera, "upd-cond")[0]["fields"] == ["conditions"]


def test_update_refuses_a_broad_policy_unless_forced(tessera: Tessera) -> None:
    assert tessera(*_add("upd-broad", "github", "--repository", "o/a")).returncode == 0
    before = stored(tessera, "upd-broad")

    refused = tessera("trust", "update", "upd-broad", "--ref", "refs/heads/main")

    assert refused.returncode == 1
    assert refused.stderr == BROAD_GITHUB + "\n"
    assert stored(tessera, "upd-broad") == before
    forced = tessera(
        "trust", "update", "upd-broad", "--ref", "refs/heads/main", "--force"
    )
    assert forced.returncode == 0, forced.stderr
    policy = stored(tessera, "upd-broad")
    assert policy is not None
    assert policy.conditions == (_equals("ref", "refs/heads/main"),)
    assert [e["forced"] for e in _events(tessera, "upd-broad")] == [True]


def test_update_checks_options_against_the_stored_profile(tessera: Tessera) -> None:
    assert tessera(*_add("upd-gl", "gitlab", "--project-path", "g/p")).returncode == 0

    results = tessera.run_many(
        {
            "wrong profile": ["trust", "update", "upd-gl", "--repository", "o/a"],
            "nothing": ["trust", "update", "upd-gl"],
            "missing": ["trust", "update", "nope", "--max-ttl", "60"],
        }
    )

    assert results["wrong profile"].returncode == 2
    assert results["wrong profile"].stderr.splitlines()[-1] == (
        "Error: --repository is for the github profile, not gitlab; "
        "use --claim for other claims"
    )
    assert results["nothing"].returncode == 2
    assert results["nothing"].stderr.splitlines()[-1] == "Error: nothing to change"
    assert results["missing"].returncode == 1
    assert results["missing"].stderr == "Error: no trust policy nope\n"
    assert _events(tessera, "upd-gl") == []


def test_update_pins_and_unpins_keys(
    tessera: Tessera, jwks_files: dict[str, Path]
) -> None:
    assert tessera(*_add("upd-pin", "github", "--repository", "o/a")).returncode == 0
    path = str(jwks_files["public"])

    pinned = tessera("trust", "update", "upd-pin", "--pinned-jwks-file", path)
    pinned_policy = stored(tessera, "upd-pin")
    unpinned = tessera("trust", "update", "upd-pin", "--no-pinned-jwks")

    assert pinned.returncode == 0, pinned.stderr
    assert pinned_policy is not None
    assert pinned_policy.pinned_jwks is not None
    assert json.loads(pinned_policy.pinned_jwks) == json.loads(
        jwks_files["public"].read_text()
    )
    assert unpinned.returncode == 0, unpinned.stderr
    policy = stored(tessera, "upd-pin")
    assert policy is not None
    assert policy.pinned_jwks is None
    assert [e["pinned_jwks"] for e in _events(tessera, "upd-pin")] == [True, False]


def test_disable_enable_delete(tessera: Tessera) -> None:
    assert tessera(*_add("life", "github", "--repository", "o/a")).returncode == 0

    disabled = tessera("trust", "disable", "life")
    after_disable = stored(tessera, "life")
    enabled = tessera("trust", "enable", "life")
    after_enable = stored(tessera, "life")
    deleted = tessera("trust", "delete", "life")
    again = tessera("trust", "delete", "life")

    assert (disabled.returncode, disabled.stdout) == (0, "trust policy life disabled\n")
    assert after_disable is not None
    assert after_disable.disabled
    assert (enabled.returncode, enabled.stdout) == (0, "trust policy life enabled\n")
    assert after_enable is not None
    assert not after_enable.disabled
    assert (deleted.returncode, deleted.stdout) == (0, "trust policy life deleted\n")
    assert stored(tessera, "life") is None
    assert (again.returncode, again.stderr) == (1, "Error: no trust policy life\n")
    assert _events(tessera, "life") == [
        {"event": "policy.disabled", "name": "life"},
        {"event": "policy.enabled", "name": "life"},
        {"event": "policy.deleted", "name": "life"},
    ]


@pytest.mark.parametrize("command", ["disable", "enable"])
def test_switching_an_unknown_policy_fails(tessera: Tessera, command: str) -> None:
    result = tessera("trust", command, "nope")

    assert result.returncode == 1
    assert result.stderr == "Error: no trust policy nope\n"
