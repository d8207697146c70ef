"""``tessera clients``: register and manage OAuth clients."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tessera.cli import client_flows
from tessera.cli.common import load_settings, operator_errors, run
from tessera.cli.context import operator
from tessera.core.client_assertion import ALGORITHMS as ASSERTION_ALGORITHMS
from tessera.core.client_assertion import PRIVATE_KEY_JWT
from tessera.core.client_auth import PUBLIC
from tessera.core.exchange import POLICY_CLIENT_PREFIX
from tessera.core.scopes import parse_scope
from tessera.core.secrets import generate_secret, hash_secret
from tessera.keys.signing import ALGORITHMS
from tessera.store.clients import ClientRecord
from tessera.verify._http import check_url
from tessera.verify._keys import load_jwk, load_jwks

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# RFC 7517 §9.3, RFC 7518 §6: members only a private or symmetric key has.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def parse_duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 30s, 10m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _words(values: tuple[str, ...]) -> list[str]:
    """Options may be repeated or hold space-separated lists."""
    return [word for value in values for word in value.split()]


def _scopes(values: tuple[str, ...]) -> frozenset[str]:
    words = _words(values)
    if not words:
        return frozenset()
    try:
        return parse_scope(" ".join(words))
    except Exception:
        raise click.BadParameter("scopes must be RFC 6749 scope tokens") from None


def _audiences(values: tuple[str, ...]) -> tuple[str, ...]:
    audiences = tuple(dict.fromkeys(_words(values)))
    for audience in audiences:
        if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in audience):
            raise click.BadParameter(f"{audience!r} is not a valid audience")
    return audiences


def _read_jwks(path: Path) -> str:
    """The JWK Set in ``path`` as compact JSON, once every key in it is a
    public key Tessera can check assertions with."""
    hint = "--jwks-file"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise click.BadParameter(
            f"cannot read a JSON document ({type(error).__name__})", param_hint=hint
        ) from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise click.BadParameter("not a JWK Set", param_hint=hint)
    for number, jwk in enumerate(entries, 1):
        name = f"key {number}" + (
            f" ({jwk['kid']})" if isinstance(jwk, dict) and "kid" in jwk else ""
        )
        # A private key given here would be one the client no longer keeps
        # to itself: refuse it rather than strip it.
        if isinstance(jwk, dict) and any(m in jwk for m in _PRIVATE_MEMBERS):
            raise click.BadParameter(
                f"{name} is a private or symmetric key; give the public keys only",
                param_hint=hint,
            )
        try:
            load_jwk(jwk, ASSERTION_ALGORITHMS)
        except (ValueError, TypeError) as error:
            raise click.BadParameter(f"{name}: {error}", param_hint=hint) from None
    try:
        load_jwks(document, ASSERTION_ALGORITHMS)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=hint) from None
    return json.dumps(document, separators=(",", ":"))


def _key_source(
    jwks_file: Path | None, jwks_uri: str | None
) -> tuple[str | None, str | None]:
    """The (jwks, jwks_uri) of a private_key_jwt client: exactly one is set."""
    if (jwks_file is None) == (jwks_uri is None):
        raise click.UsageError("give either --jwks-file or --jwks-uri")
    if jwks_file is not None:
        return _read_jwks(jwks_file), None
    try:
        return None, check_url(jwks_uri, "jwks_uri")
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--jwks-uri") from None


def describe(record: ClientRecord) -> dict[str, Any]:
    client = record.client
    return {
        "client_id": client.client_id,
        "scopes": sorted(client.scopes),
        "default_scopes": sorted(client.default_scopes),
        "audiences": list(client.audiences),
        "grant_types": sorted(client.grant_types),
        "token_ttl": client.token_ttl,
        "signing_alg": client.signing_alg,
        "disabled": client.disabled,
        "may_introspect": client.may_introspect,
        "auth_method": client.auth_method,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "jwks_uri": client.jwks_uri,
        "jwks": None if client.jwks is None else json.loads(client.jwks),
        "previous_secret_expires_at": client.previous_secret_expires_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for name, value in data.items():
        if isinstance(value, list):
            value = " ".join(value)
        elif isinstance(value, dict):
            value = json.dumps(value, separators=(",", ":"))
        click.echo(f"{name}: {'' if value is None else value}")


@click.group()
def clients() -> None:
    """Register and manage OAuth clients."""


scope_option = click.option(
    "--scope", "scope", multiple=True, help="Allowed scope (repeat, or space-separate)."
)
default_scope_option = click.option(
    "--default-scope",
    multiple=True,
    help="Scope granted when a request names none (default: all allowed).",
)
audience_option = click.option(
    "--audience", multiple=True, help="Allowed audience / resource URI (repeatable)."
)
ttl_option = click.option(
    "--token-ttl", type=click.IntRange(1), help="Access-token lifetime in seconds."
)
alg_option = click.option(
    "--alg", type=click.Choice(ALGORITHMS), help="Signing algorithm for this client."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
auth_method_option = click.option(
    "--auth-method",
    type=click.Choice(["client_secret", PRIVATE_KEY_JWT]),
    default="client_secret",
    show_default=True,
    help="How the client authenticates: a generated secret, or a JWT signed "
    "with its private key (give its public keys with --jwks-file or --jwks-uri).",
)
jwks_file_option = click.option(
    "--jwks-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JWK Set with the client's public keys (private_key_jwt).",
)
jwks_uri_option = click.option(
    "--jwks-uri", help="Where the client publishes its JWK Set (private_key_jwt)."
)
introspect_option = click.option(
    "--may-introspect/--no-may-introspect",
    default=None,
    help="Let this client (a protected resource) introspect tokens issued "
    "for its audiences.",
)


def client_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options that describe a client, shared by create and update."""
    for option in reversed(
        (
            scope_option,
            default_scope_option,
            audience_option,
            ttl_option,
            alg_option,
            introspect_option,
            jwks_file_option,
            jwks_uri_option,
            client_flows.grant_type_option,
            client_flows.redirect_uri_option,
            client_flows.post_logout_option,
            json_option,
        )
    ):
        command = option(command)
    return command


@clients.command()
@click.argument("client_id")
@client_options
@auth_method_option
@client_flows.public_option
@operator_errors
def create(
    client_id: str,
    scope: tuple[str, ...],
    default_scope: tuple[str, ...],
    audience: tuple[str, ...],
    token_ttl: int | None,
    alg: str | None,
    may_introspect: bool | None,
    jwks_file: Path | None,
    jwks_uri: str | None,
    grant_types: tuple[str, ...],
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...],
    as_json: bool,
    auth_method: str,
    public: bool,
) -> None:
    """Register a client and print its secret, once; a private_key_jwt or
    public client has no secret."""
    if not _CLIENT_ID.match(client_id):
        raise click.BadParameter(
            "use letters, digits and . _ : - (at most 128)", param_hint="CLIENT_ID"
        )
    if client_id.startswith(POLICY_CLIENT_PREFIX):
        # The client_id of tokens issued under a trust policy, to no client.
        raise click.BadParameter(
            f"ids starting with {POLICY_CLIENT_PREFIX!r} are reserved",
            param_hint="CLIENT_ID",
        )
    scopes = _scopes(scope)
    defaults = _scopes(default_scope) if default_scope else scopes
    audiences = _audiences(audience)
    if public and auth_method == PRIVATE_KEY_JWT:
        raise click.UsageError("a --public client has no keys to authenticate with")
    flows: dict[str, Any] = {
        "grant_types": client_flows.grant_types(grant_types, public=public),
        "redirect_uris": client_flows.redirect_uris(redirect_uris, "--redirect-uri"),
        "post_logout_redirect_uris": client_flows.redirect_uris(
            post_logout_redirect_uris, "--post-logout-redirect-uri"
        ),
    }
    client_flows.check_flows(
        grant_types=flows["grant_types"],
        redirect_uris=flows["redirect_uris"],
        auth_method=PUBLIC if public else auth_method,
        audiences=audiences,
    )
    if not defaults <= scopes:
        raise click.BadParameter("must be among --scope", param_hint="--default-scope")
    keys: tuple[str | None, str | None] = (None, None)
    if auth_method == PRIVATE_KEY_JWT:
        keys = _key_source(jwks_file, jwks_uri)
    elif jwks_file is not None or jwks_uri is not None:
        raise click.UsageError(
            "--jwks-file and --jwks-uri need --auth-method private_key_jwt"
        )
    settings = load_settings()

    async def go_with_keys() -> dict[str, Any]:
        async with operator(settings) as op:
            await op.register_key_client(
                client_id,
                jwks=keys[0],
                jwks_uri=keys[1],
                scopes=scopes,
                audiences=audiences,
                default_scopes=defaults,
                token_ttl=token_ttl,
                signing_alg=alg,
                may_introspect=bool(may_introspect),
                **flows,
            )
            return describe(await op.clients.record(client_id))

    async def go_public() -> dict[str, Any]:
        async with operator(settings) as op:
            await op.register_public_client(
                client_id,
                scopes=scopes,
                audiences=audiences,
                default_scopes=defaults,
                token_ttl=token_ttl,
                signing_alg=alg,
                may_introspect=bool(may_introspect),
                **flows,
            )
            return describe(await op.clients.record(client_id))

    if auth_method == PRIVATE_KEY_JWT:
        _print(run(go_with_keys()), as_json)
        return
    if public:
        _print(run(go_public()), as_json)
        return

    async def go() -> dict[str, Any]:
        async with operator(settings) as op:
            secret = await op.register(
                client_id,
                scopes=scopes,
                audiences=audiences,
                default_scopes=defaults,
                token_ttl=token_ttl,
                signing_alg=alg,
                may_introspect=bool(may_introspect),
                **flows,
            )
            record = await op.clients.record(client_id)
            return {**describe(record), "client_secret": secret}

    data = run(go())
    _print(data, as_json)
    if not as_json:
        click.echo("Store the secret now: it is not shown again.", err=True)


@clients.command(name="list")
@json_option
@operator_errors
def list_(as_json: bool) -> None:
    """List clients."""
    settings = load_settings()

    async def go() -> list[ClientRecord]:
        async with operator(settings) as op:
            return await op.clients.list()

    records = run(go())
    if as_json:
        click.echo(json.dumps([describe(r) for r in records], indent=2))
        return
    for record in records:
        client = record.client
        state = "disabled" if client.disabled else "enabled"
        # Where a private_key_jwt client's keys come from; "-" for a secret.
        keys = client.jwks_uri or ("jwks" if client.jwks else "-")
        scopes = " ".join(sorted(client.scopes))
        redirects = " ".join(client.redirect_uris) or "-"
        click.echo(
            f"{client.client_id}\t{state}\t{client.auth_method}\t{keys}\t{scopes}"
            f"\t{redirects}"
        )


@clients.command()
@click.argument("client_id")
@json_option
@operator_errors
def show(client_id: str, as_json: bool) -> None:
    """Show one client (never its secret)."""
    settings = load_settings()

    async def go() -> ClientRecord:
        async with operator(settings) as op:
            return await op.clients.record(client_id)

    _print(describe(run(go())), as_json)


def _change(client_id: str, event: str, **changes: Any) -> dict[str, Any]:
    settings = load_settings()

    async def go() -> dict[str, Any]:
        async with operator(settings) as op:
            current = (await op.clients.record(client_id)).client
            if "jwks" in changes and current.auth_method != PRIVATE_KEY_JWT:
                raise click.UsageError(
                    f"client {client_id} authenticates with a secret, not with keys"
                )
            updated = dataclasses.replace(current, **changes)
            if "default_scopes" in changes and not (
                updated.default_scopes <= updated.scopes
            ):
                raise click.BadParameter(
                    "must be among the client's scopes", param_hint="--default-scope"
                )
            if changes.keys() & {"grant_types", "redirect_uris", "audiences"}:
                client_flows.check_flows(
                    grant_types=updated.grant_types,
                    redirect_uris=updated.redirect_uris,
                    auth_method=updated.auth_method,
                    audiences=updated.audiences,
                )
            if updated.signing_alg:
                await op.keys.ensure({updated.signing_alg})
            await op.clients.save(updated)
            op.audit.emit(event, client_id=client_id, fields=sorted(changes))
            return describe(await op.clients.record(client_id))

    return run(go())


@clients.command()
@click.argument("client_id")
@client_options
@operator_errors
def update(
    client_id: str,
    scope: tuple[str, ...],
    default_scope: tuple[str, ...],
    audience: tuple[str, ...],
    token_ttl: int | None,
    alg: str | None,
    may_introspect: bool | None,
    jwks_file: Path | None,
    jwks_uri: str | None,
    grant_types: tuple[str, ...],
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change a client's scopes, audiences, token lifetime, algorithm,
    grants, redirect URIs, or (private_key_jwt) where its public keys come
    from."""
    changes: dict[str, Any] = {}
    if scope:
        changes["scopes"] = _scopes(scope)
        if not changes["scopes"]:
            raise click.BadParameter("give at least one", param_hint="--scope")
        changes["default_scopes"] = _scopes(default_scope or scope)
    elif default_scope:
        changes["default_scopes"] = _scopes(default_scope)
    if audience:
        changes["audiences"] = _audiences(audience)
        if not changes["audiences"]:
            raise click.BadParameter("give at least one", param_hint="--audience")
    if token_ttl is not None:
        changes["token_ttl"] = token_ttl
    if alg is not None:
        changes["signing_alg"] = alg
    if may_introspect is not None:
        changes["may_introspect"] = may_introspect
    if jwks_file is not None or jwks_uri is not None:
        changes["jwks"], changes["jwks_uri"] = _key_source(jwks_file, jwks_uri)
    if grant_types:
        changes["grant_types"] = frozenset(grant_types)
    if redirect_uris:
        changes["redirect_uris"] = client_flows.redirect_uris(
            redirect_uris, "--redirect-uri"
        )
    if post_logout_redirect_uris:
        changes["post_logout_redirect_uris"] = client_flows.redirect_uris(
            post_logout_redirect_uris, "--post-logout-redirect-uri"
        )
    if not changes:
        raise click.UsageError("nothing to change")
    _print(_change(client_id, "client.updated", **changes), as_json)


@clients.command()
@click.argument("client_id")
@operator_errors
def disable(client_id: str) -> None:
    """Refuse new tokens to the client; introspection reports its issued
    tokens inactive (self-contained JWTs stay valid to APIs that do not
    introspect, until they expire)."""
    _change(client_id, "client.disabled", disabled=True)
    click.echo(f"client {client_id} disabled")


@clients.command()
@click.argument("client_id")
@operator_errors
def enable(client_id: str) -> None:
    """Allow a disabled client again."""
    _change(client_id, "client.enabled", disabled=False)
    click.echo(f"client {client_id} enabled")


@clients.command(name="rotate-secret")
@click.argument("client_id")
@click.option(
    "--grace",
    default="0",
    help="How long the old secret stays valid, e.g. 10m or 1h (default: 0).",
)
@json_option
@operator_errors
def rotate_secret(client_id: str, grace: str, as_json: bool) -> None:
    """Issue a new secret, printed once; the old one lasts for --grace."""
    grace_seconds = parse_duration(grace)
    settings = load_settings()

    async def go() -> dict[str, Any]:
        async with operator(settings) as op:
            current = (await op.clients.record(client_id)).client
            if current.auth_method == PRIVATE_KEY_JWT:
                raise click.UsageError(
                    f"client {client_id} authenticates with private_key_jwt and "
                    "has no secret; change its keys with clients update"
                )
            secret = generate_secret()
            updated = dataclasses.replace(
                current,
                secret_hash=hash_secret(op.pepper, secret),
                previous_secret_hash=current.secret_hash if grace_seconds else None,
                previous_secret_expires_at=(
                    int(time.time()) + grace_seconds if grace_seconds else None
                ),
            )
            await op.clients.save(updated)
            op.audit.emit(
                "client.secret_rotated", client_id=client_id, grace=grace_seconds
            )
            record = await op.clients.record(client_id)
            return {**describe(record), "client_secret": secret}

    _print(run(go()), as_json)


@clients.command()
@click.argument("client_id")
@operator_errors
def delete(client_id: str) -> None:
    """Delete a client."""
    settings = load_settings()

    async def go() -> None:
        async with operator(settings) as op:
            await op.clients.delete(client_id)
            op.audit.emit("client.deleted", client_id=client_id)

    run(go())
    click.echo(f"client {client_id} deleted")
