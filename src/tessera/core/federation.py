"""Trust policies: which external issuers' tokens Tessera exchanges for its
own access tokens, under which conditions, and for what.

A policy names one external issuer (GitHub Actions, GitLab CI, a Kubernetes
cluster, any OIDC issuer) and the audience its tokens must carry. Its
conditions are AND-ed, each an exact match, a glob or a set membership on
one claim. A match grants scopes, audiences, a maximum lifetime and the
``sub`` of the issued token, rendered from the external token's claims.

Claims are named by path: ``repository``, or ``kubernetes.io/namespace`` for
a nested member ("/" because claim names themselves hold dots).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Match = Literal["equals", "glob", "one_of"]
MATCHES: tuple[Match, ...] = ("equals", "glob", "one_of")

_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PolicyError(ValueError):
    """A policy that cannot be stored as given; the message says why."""


def claim_value(claims: Mapping[str, Any], path: str) -> str | None:
    """The claim at ``path`` as a string, or None when it is absent or is
    not a string, a number or a boolean (those compare as their JSON text,
    so a GitLab ``"true"`` and a ``true`` read alike)."""
    value: Any = claims
    for part in path.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class Condition:
    claim: str
    match: Match
    values: tuple[str, ...]

    def holds(self, claims: Mapping[str, Any]) -> bool:
        value = claim_value(claims, self.claim)
        if value is None:
            return False
        if self.match == "glob":
            # fnmatchcase: case matters, and "*" spans "/" ("refs/heads/*"
            # takes "refs/heads/release/1.2").
            return any(fnmatch.fnmatchcase(value, p) for p in self.values)
        return value in self.values

    def narrows(self) -> bool:
        """Whether the condition pins the claim down: no pattern that starts
        with a wildcard, so ``org/*`` narrows and ``*`` or ``*/app`` do not."""
        if self.match != "glob":
            return True
        return all(p and p[0] not in "*?[" for p in self.values)

    def to_dict(self) -> dict[str, object]:
        return {"claim": self.claim, "match": self.match, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        match = data.get("match")
        values = data.get("values")
        claim = data.get("claim")
        if not isinstance(claim, str) or not claim:
            raise PolicyError("a condition names no claim")
        if match not in MATCHES:
            raise PolicyError(f"match must be one of {', '.join(MATCHES)}")
        if not isinstance(values, list) or not values:
            raise PolicyError(f"the condition on {claim} has no values")
        if not all(isinstance(v, str) and v for v in values):
            raise PolicyError(f"the condition on {claim} has a value not a string")
        if match == "equals" and len(values) != 1:
            raise PolicyError(f"equals takes one value (the condition on {claim})")
        return cls(claim, match, tuple(values))


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    name: str
    issuer: str
    audience: str
    conditions: tuple[Condition, ...]
    scopes: frozenset[str]
    audiences: tuple[str, ...]
    max_ttl: int | None
    subject: str
    profile: str | None = None
    # A JWK Set (JSON text) used instead of the issuer's discovery.
    pinned_jwks: str | None = None
    disabled: bool = False

    @property
    def default_scopes(self) -> frozenset[str]:
        """Without a scope request, a match grants every scope it may."""
        return self.scopes

    def first_failure(self, claims: Mapping[str, Any]) -> str | None:
        """Why the claims do not match this policy, or None when they do.
        The reason goes to the audit log, never to the caller."""
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            return "audience"
        for condition in self.conditions:
            if not condition.holds(claims):
                return f"condition on {condition.claim}"
        if self.subject_for(claims) is None:
            return "subject template"
        return None

    def subject_for(self, claims: Mapping[str, Any]) -> str | None:
        """The ``sub`` of the issued token; None if a named claim is absent."""
        missing = False

        def field(match: re.Match[str]) -> str:
            nonlocal missing
            value = claim_value(claims, match.group(1))
            if value is None:
                missing = True
                return ""
            return value

        rendered = _TEMPLATE_FIELD.sub(field, self.subject)
        return None if missing or not rendered else rendered


@dataclass(frozen=True, slots=True)
class Profile:
    """A ready-made shape for one kind of issuer: its usual URL, the claims
    its policies may test, and the claims one of which must be pinned down
    (``narrowing``) for the policy not to let a whole platform in."""

    name: str
    issuer: str | None
    claims: frozenset[str]
    narrowing: tuple[str, ...]
    subject: str


PROFILES = {
    profile.name: profile
    for profile in (
        Profile(
            "github",
            "https://token.actions.githubusercontent.com",
            frozenset(
                {
                    "sub",
                    "repository",
                    "repository_owner",
                    "ref",
                    "environment",
                    "job_workflow_ref",
                    "event_name",
                }
            ),
            ("repository", "repository_owner"),
            "{sub}",
        ),
        Profile(
            "gitlab",
            "https://gitlab.com",
            frozenset(
                {
                    "sub",
                    "project_path",
                    "namespace_path",
                    "ref",
                    "ref_type",
                    "environment",
                }
            ),
            ("project_path", "namespace_path"),
            "{sub}",
        ),
        Profile(
            "kubernetes",
            None,
            frozenset(
                {
                    "sub",
                    "kubernetes.io/namespace",
                    "kubernetes.io/serviceaccount/name",
                }
            ),
            ("sub", "kubernetes.io/namespace"),
            "{sub}",
        ),
    )
}


def check_policy(policy: TrustPolicy, *, force: bool = False) -> None:
    """Raise PolicyError for a policy that cannot work or that lets too much
    through: one that no condition narrows to a repository, project or
    namespace is refused unless ``force``."""
    if not _NAME.match(policy.name):
        raise PolicyError("the name must be 1-64 letters, digits, '.', '_' or '-'")
    if not policy.issuer.startswith(
        ("https://", "http://127.0.0.1", "http://localhost")
    ):
        raise PolicyError("the issuer must be an https URL (http only on loopback)")
    if not policy.audience:
        raise PolicyError("the audience the external token must carry is required")
    if not policy.audiences:
        raise PolicyError("a policy must grant at least one audience")
    if policy.max_ttl is not None and policy.max_ttl < 1:
        raise PolicyError("max_ttl must be a positive number of seconds")
    if not _TEMPLATE_FIELD.search(policy.subject) and not force:
        raise PolicyError(
            "the subject template names no claim, so every workload would get "
            "the same sub; use --force if that is meant"
        )
    profile = PROFILES.get(policy.profile or "")
    if policy.profile is not None and profile is None:
        raise PolicyError(f"unknown profile {policy.profile!r}")
    if profile is not None:
        unknown = {c.claim for c in policy.conditions} - profile.claims
        if unknown:
            raise PolicyError(
                f"the {profile.name} profile has no claim {sorted(unknown)[0]!r}; "
                f"its claims are {', '.join(sorted(profile.claims))}"
            )
    if force:
        return
    narrowing = profile.narrowing if profile else None
    if not _narrowed(policy.conditions, narrowing, policy.profile):
        what = {
            "github": "a repository or owner",
            "gitlab": "a project or group",
            "kubernetes": "a namespace",
        }.get(policy.profile or "", "a subject")
        raise PolicyError(
            f"no condition pins down {what}: every workload of the issuer "
            "would match; add one, or use --force if that is meant"
        )


def _narrowed(
    conditions: Iterable[Condition],
    narrowing: tuple[str, ...] | None,
    profile: str | None,
) -> bool:
    for condition in conditions:
        if narrowing is not None and condition.claim not in narrowing:
            continue
        if not condition.narrows():
            continue
        # A service account's sub must fix its namespace:
        # system:serviceaccount:NS:NAME.
        if (
            profile == "kubernetes"
            and condition.claim == "sub"
            and not all(_fixes_namespace(v) for v in condition.values)
        ):
            continue
        return True
    return False


def _fixes_namespace(pattern: str) -> bool:
    parts = pattern.split(":")
    return (
        len(parts) == 4
        and parts[:2] == ["system", "serviceaccount"]
        and bool(parts[2])
        and not any(c in parts[2] for c in "*?[")
    )
