"""``tessera token exchange``: trade an external token (a CI job's OIDC
token, a Kubernetes service-account token) for a Tessera access token, as a
workload would, through RFC 8693 token exchange.

A plain HTTP client of a running node: it opens no store and needs no master
key. It prints the access token alone, so ``TOKEN=$(tessera token exchange
...)`` works; the subject token and the client secret are never printed."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import click
import httpx

from tessera.cli.common import load_settings
from tessera.core.exchange import ID_TOKEN_TYPE, JWT_TYPE, TOKEN_EXCHANGE
from tessera.verify._http import check_url

SUBJECT_TOKEN_TYPES = {"jwt": JWT_TYPE, "id_token": ID_TOKEN_TYPE}
TIMEOUT_SECONDS = 10.0


@click.group()
def token() -> None:
    """Ask a running Tessera node for tokens."""


@token.command()
@click.option(
    "--url", metavar="URL", help="The Tessera node (default: TESSERA_ISSUER)."
)
@click.option(
    "--subject-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the external token.",
)
@click.option(
    "--subject-token-env", metavar="VAR", help="Variable holding the external token."
)
@click.option(
    "--subject-token-type",
    type=click.Choice(sorted(SUBJECT_TOKEN_TYPES)),
    default="jwt",
    show_default=True,
)
@click.option(
    "--audience", multiple=True, metavar="AUD", help="Audience to ask for (repeatable)."
)
@click.option(
    "--resource",
    multiple=True,
    metavar="URI",
    help="Resource URI to ask for (repeatable).",
)
@click.option(
    "--scope", multiple=True, help="Scope to ask for (repeat, or space-separate)."
)
@click.option(
    "--client-id", metavar="ID", help="Authenticate as this client (with a secret)."
)
@click.option(
    "--client-secret-env", metavar="VAR", help="Variable holding the client secret."
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole response.")
def exchange(
    url: str | None,
    subject_token_file: Path | None,
    subject_token_env: str | None,
    subject_token_type: str,
    audience: tuple[str, ...],
    resource: tuple[str, ...],
    scope: tuple[str, ...],
    client_id: str | None,
    client_secret_env: str | None,
    as_json: bool,
) -> None:
    """Exchange an external token for an access token (RFC 8693)."""
    endpoint = _token_endpoint(url)
    form: dict[str, Any] = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": _subject_token(subject_token_file, subject_token_env),
        "subject_token_type": SUBJECT_TOKEN_TYPES[subject_token_type],
    }
    if resource:
        form["resource"] = list(resource)
    if audience:
        form["audience"] = list(audience)
    words = [word for value in scope for word in value.split()]
    if words:
        form["scope"] = " ".join(dict.fromkeys(words))
    headers = {"Accept": "application/json"}
    if client_id is not None or client_secret_env is not None:
        headers["Authorization"] = _basic(client_id, client_secret_env)

    try:
        response = httpx.post(
            endpoint,
            data=form,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            # A redirected POST would carry the subject token elsewhere.
            follow_redirects=False,
        )
    except httpx.HTTPError as error:
        raise click.ClickException(
            f"cannot reach {endpoint} ({type(error).__name__})"
        ) from None

    body = _json_object(response)
    if response.status_code == 200 and isinstance(body.get("access_token"), str):
        click.echo(json.dumps(body, indent=2) if as_json else body["access_token"])
        return
    if isinstance(body.get("error"), str):
        message = f"error: {_printable(body['error'])}"
        description = body.get("error_description")
        if isinstance(description, str):
            message += f" ({_printable(description)})"
        click.echo(message, err=True)
        sys.exit(1)
    raise click.ClickException(
        f"{endpoint} answered {response.status_code} with neither a token nor "
        "an OAuth error"
    )


def _token_endpoint(url: str | None) -> str:
    base = (url or load_settings().issuer).rstrip("/")
    try:
        # The subject token is a credential: never in clear over a network.
        check_url(base, "the URL")
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--url") from None
    return f"{base}/oauth2/token"


def _subject_token(path: Path | None, variable: str | None) -> str:
    if (path is None) == (variable is None):
        raise click.UsageError(
            "give one of --subject-token-file and --subject-token-env"
        )
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise click.BadParameter(
                f"cannot read {path} ({reason})", param_hint="--subject-token-file"
            ) from None
        if not token:
            raise click.BadParameter(
                f"{path} is empty", param_hint="--subject-token-file"
            )
        return token
    token = os.environ.get(variable or "", "").strip()
    if not token:
        raise click.BadParameter(
            f"{variable} is not set or empty", param_hint="--subject-token-env"
        )
    return token


def _basic(client_id: str | None, secret_variable: str | None) -> str:
    """client_secret_basic: RFC 6749 §2.3.1 form-encodes both parts first."""
    if client_id is None or secret_variable is None:
        raise click.UsageError("give --client-id and --client-secret-env together")
    secret = os.environ.get(secret_variable, "")
    if not secret:
        raise click.BadParameter(
            f"{secret_variable} is not set or empty", param_hint="--client-secret-env"
        )
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _printable(text: str) -> str:
    # RFC 6749 §5.2 allows only printable ASCII in error fields; anything
    # else is dropped rather than written to the operator's terminal.
    return "".join(ch for ch in text if " " <= ch <= "~")
