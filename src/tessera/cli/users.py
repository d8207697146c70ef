"""``tessera users``: the people who sign in.

A password is never a command-line argument, where it would stay in the
shell history and show in the process list: it is typed at a hidden prompt,
twice, or read from the first line of standard input (``--password-stdin``).
Neither the password nor its hash is ever printed or audited.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from typing import Any

import click

from tessera.cli.common import load_settings, operator_errors, run
from tessera.cli.context import Operator, operator
from tessera.core.users import (
    Passwords,
    User,
    check_new_password,
    check_username,
    new_user,
)
from tessera.store.users import UserExists, UserRecord

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAX_NAME = 256
_MAX_EMAIL = 254  # RFC 5321 §4.5.3.1.3, less the angle brackets


def describe(record: UserRecord) -> dict[str, Any]:
    user = record.user
    return {
        "user_id": user.user_id,
        "username": user.username,
        "name": user.name,
        "email": user.email,
        "disabled": user.disabled,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for name, value in data.items():
        click.echo(f"{name}: {'' if value is None else value}")


def _username(text: str) -> str:
    try:
        return check_username(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="USERNAME") from None


def _name(text: str | None) -> str | None:
    if text is not None and (
        len(text) > _MAX_NAME or any(ord(ch) < 0x20 or ch == "\x7f" for ch in text)
    ):
        raise click.BadParameter(
            f"at most {_MAX_NAME} characters, no control characters",
            param_hint="--name",
        )
    return text


def _email(text: str | None) -> str | None:
    if text is not None and (len(text) > _MAX_EMAIL or not _EMAIL.match(text)):
        raise click.BadParameter("not an email address", param_hint="--email")
    return text


def _acceptable(password: str) -> str:
    try:
        check_new_password(password)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    return password


def read_password(from_stdin: bool) -> str:
    """The new password, from standard input or typed twice at a hidden
    prompt; one that is too short is refused (at the prompt: asked again)."""
    if not from_stdin:
        # A UsageError from value_proc is shown and the prompt asked again.
        # On stderr, prompts and all, so that stdout holds only the result.
        return click.prompt(
            "Password",
            hide_input=True,
            confirmation_prompt=True,
            value_proc=_acceptable,
            err=True,
        )
    line = sys.stdin.readline()
    if not line:
        raise click.UsageError("no password on standard input")
    try:
        return _acceptable(line.removesuffix("\n").removesuffix("\r"))
    except click.UsageError as error:
        raise click.ClickException(error.message) from None


password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def users() -> None:
    """Create and manage the people who sign in."""


@users.command()
@click.argument("username")
@click.option("--name", help="Full name, shown to clients as the name claim.")
@click.option("--email", help="Email address, shown as the email claim.")
@password_stdin_option
@json_option
@operator_errors
def create(
    username: str,
    name: str | None,
    email: str | None,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create a user; the password is asked for (or read from stdin)."""
    user = new_user(_username(username), name=_name(name), email=_email(email))
    settings = load_settings()

    async def go() -> dict[str, Any]:
        async with operator(settings) as op:
            # Asked before the password, so nobody types one for nothing.
            if await op.users.get_by_username(user.username) is not None:
                raise UserExists(user.username)
            password_hash = await Passwords().hash(read_password(password_stdin))
            await op.users.create(user, password_hash)
            op.audit.emit("user.created", user_id=user.user_id, username=user.username)
            return describe(await op.users.record(user.username))

    _print(run(go()), as_json)


@users.command(name="list")
@json_option
@operator_errors
def list_(as_json: bool) -> None:
    """List users."""
    settings = load_settings()

    async def go() -> list[UserRecord]:
        async with operator(settings) as op:
            return await op.users.list()

    records = run(go())
    if as_json:
        click.echo(json.dumps([describe(r) for r in records], indent=2))
        return
    for record in records:
        user = record.user
        state = "disabled" if user.disabled else "enabled"
        click.echo(f"{user.username}\t{state}\t{user.user_id}\t{user.name or ''}")


@users.command()
@click.argument("username")
@json_option
@operator_errors
def show(username: str, as_json: bool) -> None:
    """Show one user (never the password hash)."""
    settings = load_settings()

    async def go() -> UserRecord:
        async with operator(settings) as op:
            return await op.users.record(username)

    _print(describe(run(go())), as_json)


def _set_disabled(username: str, disabled: bool) -> str:
    settings = load_settings()

    async def go() -> str:
        async with operator(settings) as op:
            user = (await op.users.record(username)).user
            await op.users.save(dataclasses.replace(user, disabled=disabled))
            _audit(op, "user.disabled" if disabled else "user.enabled", user)
            return user.username

    return run(go())


@users.command()
@click.argument("username")
@operator_errors
def disable(username: str) -> None:
    """Refuse the user's logins (the password is kept)."""
    click.echo(f"user {_set_disabled(username, True)} disabled")


@users.command()
@click.argument("username")
@operator_errors
def enable(username: str) -> None:
    """Allow a disabled user to log in again."""
    click.echo(f"user {_set_disabled(username, False)} enabled")


@users.command(name="set-password")
@click.argument("username")
@password_stdin_option
@operator_errors
def set_password(username: str, password_stdin: bool) -> None:
    """Replace a user's password; asked for (or read from stdin)."""
    settings = load_settings()

    async def go() -> User:
        async with operator(settings) as op:
            user = (await op.users.record(username)).user
            password_hash = await Passwords().hash(read_password(password_stdin))
            await op.users.set_password(user.user_id, password_hash)
            _audit(op, "user.password_set", user)
            return user

    user = run(go())
    click.echo(f"password of user {user.username} set")


@users.command(name="revoke-consent")
@click.argument("username")
@click.argument("client_id")
@operator_errors
def revoke_consent(username: str, client_id: str) -> None:
    """Forget what the user allowed the client: its next authorization
    request shows the consent page again. Tokens already issued stay valid
    until they expire or are revoked."""
    settings = load_settings()

    async def go() -> tuple[User, bool]:
        async with operator(settings) as op:
            user = (await op.users.record(username)).user
            revoked = await op.consents.revoke(user.user_id, client_id)
            if revoked:
                op.audit.emit(
                    "consent.revoked",
                    user_id=user.user_id,
                    username=user.username,
                    client_id=client_id,
                )
            return user, revoked

    user, revoked = run(go())
    if not revoked:
        raise click.ClickException(
            f"user {user.username} has no consent for client {client_id}"
        )
    click.echo(f"consent of user {user.username} for client {client_id} revoked")


def _audit(op: Operator, event: str, user: User) -> None:
    op.audit.emit(event, user_id=user.user_id, username=user.username)
