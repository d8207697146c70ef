"""The options of ``tessera clients`` that say which grants a client uses,
and where the authorization code flow may send a browser back to."""

from __future__ import annotations

import click

from tessera.core.client_auth import PUBLIC
from tessera.core.redirect_uris import registration_problem
from tessera.core.token_endpoint import SUPPORTED_GRANT_TYPES

CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
# What a client without credentials may use: it acts for a person, who
# authenticates in the browser; PKCE binds the code to the app.
PUBLIC_GRANT_TYPES = frozenset({AUTHORIZATION_CODE, "refresh_token"})

redirect_uri_option = click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    help="Where authorization codes may be sent (repeatable): https, "
    "http://127.0.0.1 or http://[::1] (any port), or a private-use scheme "
    "such as com.example.app:/cb. Replaces all of them on update.",
)
post_logout_option = click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    help="Where a browser may be sent after logout (repeatable; same rules). "
    "Replaces all of them on update.",
)
grant_type_option = click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(sorted(SUPPORTED_GRANT_TYPES)),
    help="A grant the client may use (repeatable; default client_credentials, "
    "or authorization_code for --public). Replaces all of them on update.",
)
public_option = click.option(
    "--public",
    is_flag=True,
    help="A native or browser app that cannot keep a secret: none is made, "
    "and it must use PKCE (auth method none).",
)


def redirect_uris(values: tuple[str, ...], hint: str) -> tuple[str, ...]:
    """The URIs in the order given, each one checked for registration."""
    uris = tuple(dict.fromkeys(values))
    for uri in uris:
        problem = registration_problem(uri)
        if problem is not None:
            raise click.BadParameter(f"{uri!r} {problem}", param_hint=hint)
    return uris


def grant_types(values: tuple[str, ...], *, public: bool) -> frozenset[str]:
    if values:
        return frozenset(values)
    return frozenset({AUTHORIZATION_CODE if public else CLIENT_CREDENTIALS})


def check_flows(
    *,
    grant_types: frozenset[str],
    redirect_uris: tuple[str, ...],
    auth_method: str,
    audiences: tuple[str, ...],
) -> None:
    """Refuse a client whose grants, redirect URIs, authentication and
    audiences do not fit together."""
    if AUTHORIZATION_CODE in grant_types and not redirect_uris:
        raise click.BadParameter(
            "the authorization_code grant needs at least one",
            param_hint="--redirect-uri",
        )
    if redirect_uris and AUTHORIZATION_CODE not in grant_types:
        raise click.UsageError(
            "redirect URIs are for clients with --grant-type authorization_code"
        )
    if auth_method == PUBLIC and not grant_types <= PUBLIC_GRANT_TYPES:
        raise click.BadParameter(
            "a public client has no credentials: only authorization_code and "
            "refresh_token",
            param_hint="--grant-type",
        )
    # Tokens for a person have a fallback audience; a machine's do not.
    if CLIENT_CREDENTIALS in grant_types and not audiences:
        raise click.BadParameter("give at least one", param_hint="--audience")
