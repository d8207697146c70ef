"""``tessera users``, run as real processes; passwords go in on stdin, or
at the prompt (which, without a terminal, reads stdin too)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tessera.core.users import Account, Passwords
from tessera.store.users import UserRepository
from tests.cli.conftest import Tessera, make_tessera

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    return make_tessera(tmp_path_factory, "cli-users")


def run(
    tessera: Tessera, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``tessera ARGS`` with ``stdin`` as its input, in a session of its own:
    with no controlling terminal, the hidden prompt reads stdin too."""
    return subprocess.run(
        [sys.executable, "-m", "tessera", *args],
        input=stdin,
        env={
            **os.environ,
            "TESSERA_DATA_DIR": str(tessera.data_dir),
            "TESSERA_AUDIT_LOG": str(tessera.audit_log),
        },
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def account(tessera: Tessera, username: str) -> Account | None:
    return asyncio.run(
        tessera._with_store(lambda s: UserRepository(s).get_by_username(username))
    )


def stored(tessera: Tessera, username: str) -> Account:
    found = account(tessera, username)
    assert found is not None
    return found


def password_of(tessera: Tessera, username: str, password: str) -> bool:
    password_hash = stored(tessera, username).password_hash
    return asyncio.run(Passwords().verify(password_hash, password))


def events_for(tessera: Tessera, username: str) -> list[dict[str, Any]]:
    return [e for e in tessera.audit_events() if e.get("username") == username]


def test_create_reads_the_password_from_stdin(tessera: Tessera) -> None:
    result = run(
        tessera,
        "users", "create", "Alice", "--name", "Alice A", "--email", "a@example.org",
        "--password-stdin", "--json",
        stdin=PASSWORD + "\n",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == {
        "user_id": data["user_id"],
        "username": "alice",
        "name": "Alice A",
        "email": "a@example.org",
        "disabled": False,
        "created_at": data["created_at"],
        "updated_at": data["created_at"],
    }
    assert len(data["user_id"]) == 36
    assert password_of(tessera, "alice", PASSWORD)
    assert not password_of(tessera, "alice", PASSWORD + "\n")
    assert stored(tessera, "alice").password_hash.startswith(
        "$argon2id$v=19$m=19456,t=2,p=1$"
    )
    assert events_for(tessera, "alice") == [
        {
            "ts": events_for(tessera, "alice")[0]["ts"],
            "event": "user.created",
            "user_id": data["user_id"],
            "username": "alice",
        }
    ]


def test_create_asks_for_the_password_twice(tessera: Tessera) -> None:
    # A mismatch, then a match.
    typed = "first password\nsecond password\nprompted pw\nprompted pw\n"
    result = run(tessera, "users", "create", "bob", stdin=typed)

    assert result.returncode == 0, result.stderr
    assert "Repeat for confirmation" in result.stderr
    assert "do not match" in result.stderr
    assert result.stdout.startswith("user_id: ")
    assert "username: bob\n" in result.stdout
    assert password_of(tessera, "bob", "prompted pw")


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        pytest.param(["--password-stdin"], "1234567\n", id="stdin"),
        pytest.param([], "1234567\n", id="prompt"),
        pytest.param(["--password-stdin"], "", id="stdin-empty"),
    ],
)
def test_a_short_or_missing_password_is_refused(
    tessera: Tessera, args: list[str], stdin: str
) -> None:
    result = run(tessera, "users", "create", "shorty", *args, stdin=stdin)

    assert result.returncode != 0
    assert result.stdout == ""
    if stdin:
        assert "a password has at least 8 characters" in result.stderr
    else:
        assert "no password on standard input" in result.stderr
    assert account(tessera, "shorty") is None


def test_a_password_is_never_an_argument(tessera: Tessera) -> None:
    result = run(tessera, "users", "create", "eve", "--password", PASSWORD)
    assert result.returncode == 2
    assert "No such option '--password'" in result.stderr
    assert account(tessera, "eve") is None


def test_a_taken_username_is_refused_before_the_password(tessera: Tessera) -> None:
    run(tessera, "users", "create", "dup", "--password-stdin", stdin=PASSWORD)
    result = run(tessera, "users", "create", "DUP", stdin=PASSWORD + "\n")

    assert result.returncode == 1
    assert result.stderr == "Error: user dup already exists\n"
    assert len(events_for(tessera, "dup")) == 1


@pytest.mark.parametrize("username", ["no spaces", "-dash", "élise", "x" * 129])
def test_a_malformed_username_is_refused(tessera: Tessera, username: str) -> None:
    result = run(
        tessera, "users", "create", "--password-stdin", "--", username, stdin="x"
    )
    assert result.returncode == 2
    assert "a username is 1 to 128 letters, digits" in result.stderr


def test_list_show_disable_enable(tessera: Tessera) -> None:
    run(tessera, "users", "create", "carol", "--password-stdin", stdin=PASSWORD)
    user_id = stored(tessera, "carol").user.user_id

    disabled = run(tessera, "users", "disable", "Carol")
    assert (disabled.returncode, disabled.stdout) == (0, "user carol disabled\n")
    assert stored(tessera, "carol").user.disabled
    listed = run(tessera, "users", "list")
    assert f"carol\tdisabled\t{user_id}\t\n" in listed.stdout
    shown = json.loads(run(tessera, "users", "show", "CAROL", "--json").stdout)
    assert (shown["username"], shown["disabled"]) == ("carol", True)

    enabled = run(tessera, "users", "enable", "carol")
    assert (enabled.returncode, enabled.stdout) == (0, "user carol enabled\n")
    listed_json = json.loads(run(tessera, "users", "list", "--json").stdout)
    assert {"username": "carol", "disabled": False}.items() <= next(
        u for u in listed_json if u["username"] == "carol"
    ).items()
    assert [e["event"] for e in events_for(tessera, "carol")] == [
        "user.created",
        "user.disabled",
        "user.enabled",
    ]
    # Text output never shows the hash either.
    assert "$argon2" not in run(tessera, "users", "show", "carol").stdout


def test_set_password_replaces_the_password(tessera: Tessera) -> None:
    run(tessera, "users", "create", "dan", "--password-stdin", stdin=PASSWORD)

    result = run(
        tessera, "users", "set-password", "dan", "--password-stdin", stdin="new pass 1"
    )
    prompted = run(tessera, "users", "set-password", "dan", stdin="new pass 2\n" * 2)
    short = run(tessera, "users", "set-password", "dan", "--password-stdin", stdin="x")

    assert (result.returncode, result.stdout) == (0, "password of user dan set\n")
    assert prompted.returncode == 0, prompted.stderr
    assert short.returncode == 1
    assert password_of(tessera, "dan", "new pass 2")
    assert not password_of(tessera, "dan", PASSWORD)
    assert [e["event"] for e in events_for(tessera, "dan")] == [
        "user.created",
        "user.password_set",
        "user.password_set",
    ]


def test_unknown_users_are_errors(tessera: Tessera) -> None:
    results = tessera.run_many(
        {
            "show": ["users", "show", "nobody"],
            "disable": ["users", "disable", "nobody"],
            "enable": ["users", "enable", "nobody"],
        }
    )
    for result in results.values():
        assert (result.returncode, result.stderr) == (1, "Error: no user nobody\n")
    missing = run(
        tessera, "users", "set-password", "nobody", "--password-stdin", stdin=PASSWORD
    )
    assert (missing.returncode, missing.stderr) == (1, "Error: no user nobody\n")


def test_the_audit_log_never_holds_a_password_or_a_hash(tessera: Tessera) -> None:
    run(tessera, "users", "create", "frank", "--password-stdin", stdin=PASSWORD)
    run(tessera, "users", "set-password", "frank", "--password-stdin", stdin="x" * 12)
    logged = tessera.audit_log.read_text()

    assert "user.created" in logged and "user.password_set" in logged
    for secret in (PASSWORD, "x" * 12, "prompted pw", "new pass", "$argon2"):
        assert secret not in logged
