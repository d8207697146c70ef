"""What ``tessera trust add`` and ``update`` read from their options: the
conditions (generic ones and each profile's shortcuts), and a pinned JWK Set
checked as the verifier will check it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tessera.core.federation import PROFILES, Condition
from tessera.federation.external_token import ALGORITHMS
from tessera.verify._keys import load_jwks

NO_PROFILE = "none"
_WILDCARDS = frozenset("*?[")
_NAMESPACE = "kubernetes.io/namespace"
_ACCOUNT = "kubernetes.io/serviceaccount/name"


@dataclass(frozen=True, slots=True)
class Shortcut:
    """An option that stands for a condition on one claim of some profiles."""

    flag: str
    claim: str
    profiles: frozenset[str]
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


def _shortcut_table(*rows: tuple[str, str, str, str]) -> list[Shortcut]:
    return [
        Shortcut(flag, claim, frozenset(profiles.split()), help)
        for flag, claim, profiles, help in rows
    ]


# In the order their conditions are stored.
SHORTCUTS = _shortcut_table(
    ("--repository", "repository", "github", "GitHub: owner/name."),
    ("--repository-owner", "repository_owner", "github", "GitHub: the owner."),
    ("--project-path", "project_path", "gitlab", "GitLab: group/project."),
    ("--namespace-path", "namespace_path", "gitlab", "GitLab: the group."),
    ("--ref", "ref", "github gitlab", "GitHub, GitLab: e.g. refs/heads/main, main."),
    ("--ref-type", "ref_type", "gitlab", "GitLab: branch or tag."),
    ("--environment", "environment", "github gitlab", "GitHub, GitLab."),
    ("--job-workflow-ref", "job_workflow_ref", "github", "GitHub."),
    ("--event-name", "event_name", "github", "GitHub: e.g. push."),
    ("--namespace", _NAMESPACE, "kubernetes", "Kubernetes: the namespace."),
    (
        "--service-account",
        _ACCOUNT,
        "kubernetes",
        "Kubernetes: the service account (with --namespace).",
    ),
)


def _pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        claim, equals, text = value.partition("=")
        if not equals or not claim or not text:
            raise click.BadParameter(f"{value!r} is not CLAIM=VALUE")
        pairs.append((claim, text))
    return pairs


GENERIC = [
    click.option(
        "--claim",
        "claim_equals",
        multiple=True,
        metavar="CLAIM=VALUE",
        callback=_pairs,
        help="The claim must equal VALUE (repeatable; all must hold).",
    ),
    click.option(
        "--claim-glob",
        multiple=True,
        metavar="CLAIM=PATTERN",
        callback=_pairs,
        help="The claim must match the glob PATTERN.",
    ),
    click.option(
        "--claim-in",
        multiple=True,
        metavar="CLAIM=V1,V2",
        callback=_pairs,
        help="The claim must be one of the values.",
    ),
]


def condition_options(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        *GENERIC,
        *(click.option(s.flag, s.dest, help=s.help) for s in SHORTCUTS),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_conditions(
    profile: str | None, given: Mapping[str, Any]
) -> tuple[Condition, ...] | None:
    """The conditions the options describe, AND-ed: the profile's shortcuts
    first, then the generic ones. None when no condition option was given."""
    shortcuts = {s.dest: given[s.dest] for s in SHORTCUTS if given[s.dest] is not None}
    generic = [given["claim_equals"], given["claim_glob"], given["claim_in"]]
    if not shortcuts and not any(generic):
        return None
    _reject_other_profiles(profile, shortcuts)
    for shortcut in SHORTCUTS:
        if shortcuts.get(shortcut.dest) == "":
            raise click.BadParameter("must not be empty", param_hint=shortcut.flag)

    # The two kubernetes options are read together: sub names both.
    conditions = _service_account(
        shortcuts.pop("namespace", None), shortcuts.pop("service_account", None)
    )
    conditions += [
        _shortcut(s.claim, shortcuts[s.dest]) for s in SHORTCUTS if s.dest in shortcuts
    ]
    conditions += [Condition(c, "equals", (v,)) for c, v in given["claim_equals"]]
    conditions += [Condition(c, "glob", (v,)) for c, v in given["claim_glob"]]
    for claim, text in given["claim_in"]:
        values = tuple(dict.fromkeys(text.split(",")))
        if not all(values):
            raise click.BadParameter(
                f"{claim}={text!r} has an empty value", param_hint="--claim-in"
            )
        conditions.append(Condition(claim, "one_of", values))
    return tuple(conditions)


def _reject_other_profiles(profile: str | None, shortcuts: Mapping[str, str]) -> None:
    for shortcut in SHORTCUTS:
        if shortcut.dest in shortcuts and profile not in shortcut.profiles:
            owners = " or ".join(sorted(shortcut.profiles))
            raise click.UsageError(
                f"{shortcut.flag} is for the {owners} profile, "
                f"not {profile or NO_PROFILE}; use --claim for other claims"
            )


def _is_glob(value: str) -> bool:
    return not _WILDCARDS.isdisjoint(value)


def _shortcut(claim: str, value: str) -> Condition:
    # Git refuses * ? [ in ref names and GitHub and GitLab in repository and
    # environment names, so a value holding one can only be meant as a glob.
    return Condition(claim, "glob" if _is_glob(value) else "equals", (value,))


def _service_account(namespace: str | None, account: str | None) -> list[Condition]:
    """A service account is pinned through ``sub``
    (``system:serviceaccount:NS:NAME``), which names both at once."""
    if account is None:
        return [] if namespace is None else [_shortcut(_NAMESPACE, namespace)]
    if namespace is None:
        raise click.UsageError("--service-account needs --namespace")
    if ":" in namespace + account:
        raise click.UsageError("a namespace or service account name holds no ':'")
    if not _is_glob(namespace):
        return [_shortcut("sub", f"system:serviceaccount:{namespace}:{account}")]
    # A glob in the namespace part of sub would also match the ':' after it,
    # so the two claims are tested apart.
    if _is_glob(account):
        raise click.UsageError(
            "--service-account may be a glob only when --namespace is fixed"
        )
    return [_shortcut(_NAMESPACE, namespace), Condition(_ACCOUNT, "equals", (account,))]


def default_issuer(profile: str | None) -> str:
    issuer = PROFILES[profile].issuer if profile else None
    if issuer is None:
        raise click.UsageError(
            f"the {profile or NO_PROFILE} profile has no usual issuer; give --issuer"
        )
    return issuer


def read_pinned_jwks(path: Path) -> str:
    """The JWK Set in ``path`` as compact JSON, once the verifier could use
    it. Nothing of the file is ever echoed: it may be a private key given by
    mistake."""
    hint = "--pinned-jwks-file"
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {path} ({error.strerror})", param_hint=hint
        ) from None
    except ValueError:
        raise click.BadParameter(f"{path} is not JSON", param_hint=hint) from None
    keys = document.get("keys") if isinstance(document, dict) else None
    for index, key in enumerate(keys if isinstance(keys, list) else []):
        # "d": an RSA, EC or OKP private key; "k": a symmetric secret.
        if isinstance(key, dict) and ("d" in key or "k" in key):
            raise click.BadParameter(
                f"key {index} of {path} is private; pin public keys only",
                param_hint=hint,
            )
    try:
        load_jwks(document, ALGORITHMS)
    except ValueError as error:
        raise click.BadParameter(f"{path}: {error}", param_hint=hint) from None
    return json.dumps(document, separators=(",", ":"))
