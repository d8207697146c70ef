"""``tessera trust``: the trust policies under which external tokens (GitHub
Actions, GitLab CI, Kubernetes service accounts) are exchanged for Tessera
access tokens; see tessera.core.federation."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tessera.cli.clients import _audiences, _scopes, json_option
from tessera.cli.common import load_settings, operator_errors, run
from tessera.cli.context import Operator, operator
from tessera.cli.trust_options import (
    NO_PROFILE,
    build_conditions,
    condition_options,
    default_issuer,
    read_pinned_jwks,
)
from tessera.core.federation import PROFILES, Condition, TrustPolicy, check_policy
from tessera.store.policies import PolicyNotFound


def summary(condition: Condition) -> str:
    return f"{condition.claim} {condition.match} {','.join(condition.values)}"


def describe(policy: TrustPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "profile": policy.profile,
        "issuer": policy.issuer,
        "external_audience": policy.audience,
        "conditions": [c.to_dict() for c in policy.conditions],
        "scopes": sorted(policy.scopes),
        "audiences": list(policy.audiences),
        "max_ttl": policy.max_ttl,
        "subject": policy.subject,
        # Public keys only: add and update refuse a private one.
        "pinned_jwks": json.loads(policy.pinned_jwks) if policy.pinned_jwks else None,
        "disabled": policy.disabled,
    }


def _print(policy: TrustPolicy, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(describe(policy), indent=2))
        return
    data = describe(policy)
    if policy.pinned_jwks:
        kids = [str(key.get("kid", "?")) for key in data["pinned_jwks"]["keys"]]
        data["pinned_jwks"] = "keys " + " ".join(kids)
    for name, value in data.items():
        if name == "conditions":
            click.echo("conditions:")
            for condition in policy.conditions:
                click.echo(f"  {summary(condition)}")
            continue
        if isinstance(value, list):
            value = " ".join(value)
        if isinstance(value, bool):
            value = str(value).lower()
        click.echo(f"{name}:" if value in (None, "") else f"{name}: {value}")


def _audit_fields(policy: TrustPolicy, force: bool) -> dict[str, Any]:
    return {
        "name": policy.name,
        "profile": policy.profile,
        "issuer": policy.issuer,
        "conditions": [summary(c) for c in policy.conditions],
        "pinned_jwks": policy.pinned_jwks is not None,
        "forced": force,
    }


@click.group()
def trust() -> None:
    """Trust policies: which external tokens are exchanged for what."""


def policy_options(adding: bool) -> Callable[[Callable[..., None]], Any]:
    """The options that describe a policy: required to add one, each
    optional to update one."""
    options = [
        click.option(
            "--profile",
            type=click.Choice([*PROFILES, NO_PROFILE]),
            required=adding,
            help="The kind of issuer; 'none' for any other OIDC issuer.",
        ),
        click.option(
            "--issuer", metavar="URL", help="The issuer URL (default: the profile's)."
        ),
        click.option(
            "--external-audience",
            metavar="AUD",
            required=adding,
            help="The aud the external token must carry.",
        ),
        click.option(
            "--scope",
            multiple=True,
            help="A scope a match grants (repeat, or space-separate).",
        ),
        click.option(
            "--audience",
            multiple=True,
            metavar="URI",
            required=adding,
            help="An audience / resource URI the issued token is for (repeatable).",
        ),
        click.option(
            "--max-ttl",
            type=click.IntRange(1),
            metavar="SECONDS",
            help="Cap on the issued token's lifetime.",
        ),
        click.option(
            "--subject",
            metavar="TEMPLATE",
            help="The issued sub, e.g. {sub} (the default).",
        ),
        click.option(
            "--pinned-jwks-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Check tokens with this JWK Set, not the issuer's published keys.",
        ),
        click.option(
            "--force", is_flag=True, help="Store a policy that lets much through."
        ),
        json_option,
    ]

    def decorate(command: Callable[..., None]) -> Any:
        command = condition_options(command)
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _profile(name: str | None) -> str | None:
    return None if name == NO_PROFILE else name


@trust.command()
@click.argument("name")
@policy_options(adding=True)
@operator_errors
def add(name: str, **given: Any) -> None:
    """Add a trust policy.

    Conditions are AND-ed. A profile option's value holding * ? or [ is a
    glob; --namespace with --service-account pins the token's sub to
    system:serviceaccount:NS:NAME."""
    profile = _profile(given["profile"])
    audiences = _audiences(given["audience"])
    if not audiences:
        raise click.BadParameter("give at least one", param_hint="--audience")
    pinned = given["pinned_jwks_file"]
    policy = TrustPolicy(
        name=name,
        issuer=given["issuer"] or default_issuer(profile),
        audience=given["external_audience"],
        conditions=build_conditions(profile, given) or (),
        scopes=_scopes(given["scope"]),
        audiences=audiences,
        max_ttl=given["max_ttl"],
        subject=given["subject"] or _default_subject(profile),
        profile=profile,
        pinned_jwks=read_pinned_jwks(pinned) if pinned else None,
    )
    check_policy(policy, force=given["force"])
    settings = load_settings()

    async def go() -> None:
        async with operator(settings) as op:
            await op.policies.create(policy)
            op.audit.emit("policy.created", **_audit_fields(policy, given["force"]))

    run(go())
    _print(policy, given["as_json"])


def _default_subject(profile: str | None) -> str:
    return PROFILES[profile].subject if profile else "{sub}"


@trust.command(name="list")
@json_option
@operator_errors
def list_(as_json: bool) -> None:
    """List trust policies."""
    settings = load_settings()

    async def go() -> list[TrustPolicy]:
        async with operator(settings) as op:
            return await op.policies.all()

    policies = run(go())
    if as_json:
        click.echo(json.dumps([describe(p) for p in policies], indent=2))
        return
    for policy in policies:
        state = "disabled" if policy.disabled else "enabled"
        profile = policy.profile or NO_PROFILE
        click.echo(f"{policy.name}\t{state}\t{profile}\t{policy.issuer}")


@trust.command()
@click.argument("name")
@json_option
@operator_errors
def show(name: str, as_json: bool) -> None:
    """Show one trust policy."""
    settings = load_settings()

    async def go() -> TrustPolicy:
        async with operator(settings) as op:
            return await _load(op, name)

    _print(run(go()), as_json)


async def _load(op: Operator, name: str) -> TrustPolicy:
    policy = await op.policies.get(name)
    if policy is None:
        raise PolicyNotFound(name)
    return policy


@trust.command()
@click.argument("name")
@policy_options(adding=False)
@click.option("--no-pinned-jwks", is_flag=True, help="Use the issuer's keys again.")
@operator_errors
def update(name: str, **given: Any) -> None:
    """Change a trust policy; conditions are replaced only when a condition
    option is given."""
    changes = _plain_changes(given)
    settings = load_settings()

    async def go() -> TrustPolicy:
        async with operator(settings) as op:
            current = await _load(op, name)
            profile = changes.get("profile", current.profile)
            conditions = build_conditions(profile, given)
            if conditions is not None:
                changes["conditions"] = conditions
            if not changes:
                raise click.UsageError("nothing to change")
            updated = dataclasses.replace(current, **changes)
            check_policy(updated, force=given["force"])
            await op.policies.save(updated)
            op.audit.emit(
                "policy.updated",
                **_audit_fields(updated, given["force"]),
                fields=sorted(changes),
            )
            return updated

    _print(run(go()), given["as_json"])


def _plain_changes(given: dict[str, Any]) -> dict[str, Any]:
    """The changes that need no stored policy to be read."""
    changes: dict[str, Any] = {}
    if given["profile"] is not None:
        changes["profile"] = _profile(given["profile"])
    for option, field in [
        ("issuer", "issuer"),
        ("external_audience", "audience"),
        ("max_ttl", "max_ttl"),
        ("subject", "subject"),
    ]:
        if given[option] is not None:
            changes[field] = given[option]
    if given["scope"]:
        changes["scopes"] = _scopes(given["scope"])
    if given["audience"]:
        changes["audiences"] = _audiences(given["audience"])
        if not changes["audiences"]:
            raise click.BadParameter("give at least one", param_hint="--audience")
    pinned = given["pinned_jwks_file"]
    if pinned and given["no_pinned_jwks"]:
        raise click.UsageError("give --pinned-jwks-file or --no-pinned-jwks, not both")
    if pinned:
        changes["pinned_jwks"] = read_pinned_jwks(pinned)
    if given["no_pinned_jwks"]:
        changes["pinned_jwks"] = None
    return changes


def _switch(name: str, event: str, disabled: bool) -> None:
    settings = load_settings()

    async def go() -> None:
        async with operator(settings) as op:
            current = await _load(op, name)
            await op.policies.save(dataclasses.replace(current, disabled=disabled))
            op.audit.emit(event, name=name)

    run(go())


@trust.command()
@click.argument("name")
@operator_errors
def disable(name: str) -> None:
    """Stop exchanging tokens under the policy (tokens already issued stay
    valid until they expire)."""
    _switch(name, "policy.disabled", disabled=True)
    click.echo(f"trust policy {name} disabled")


@trust.command()
@click.argument("name")
@operator_errors
def enable(name: str) -> None:
    """Exchange tokens under a disabled policy again."""
    _switch(name, "policy.enabled", disabled=False)
    click.echo(f"trust policy {name} enabled")


@trust.command()
@click.argument("name")
@operator_errors
def delete(name: str) -> None:
    """Delete a trust policy."""
    settings = load_settings()

    async def go() -> None:
        async with operator(settings) as op:
            await op.policies.delete(name)
            op.audit.emit("policy.deleted", name=name)

    run(go())
    click.echo(f"trust policy {name} deleted")
