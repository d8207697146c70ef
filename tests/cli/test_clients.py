from __future__ import annotations

import base64
import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tessera.core.secrets import hash_secret, looks_like_secret
from tests.cli.conftest import Tessera, make_tessera


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    return make_tessera(tmp_path_factory, "cli-clients")


@dataclass
class Created:
    result: subprocess.CompletedProcess[str]
    data: dict[str, Any]
    secret: str
    before: int
    after: int


@pytest.fixture(scope="module")
def created(tessera: Tessera) -> Created:
    before = int(time.time())
    result = tessera(
        "clients", "create", "billing",
        "--scope", "read write", "--scope", "admin",
        "--default-scope", "read",
        "--audience", "https://api.example", "--audience", "urn:ledger",
        "--token-ttl", "300",
        "--json",
    )  # fmt: skip
    after = int(time.time())
    data = json.loads(result.stdout) if result.returncode == 0 else {}
    return Created(result, data, data.get("client_secret", ""), before, after)


def _secret_forms(tessera: Tessera, secret: str) -> list[str]:
    """The secret and every usual text form of its stored hash."""
    digest = hash_secret(tessera.pepper, secret)
    return [
        secret,
        digest.hex(),
        base64.b64encode(digest).decode(),
        base64.urlsafe_b64encode(digest).decode().rstrip("="),
    ]


def test_create_prints_the_client_and_its_secret(created: Created) -> None:
    assert created.result.returncode == 0, created.result.stderr
    assert created.result.stderr == ""
    assert created.before <= created.data["created_at"] <= created.after
    assert created.data == {
        "client_id": "billing",
        "scopes": ["admin", "read", "write"],
        "default_scopes": ["read"],
        "audiences": ["https://api.example", "urn:ledger"],
        "grant_types": ["client_credentials"],
        "token_ttl": 300,
        "signing_alg": None,
        "disabled": False,
        "may_introspect": False,
        "auth_method": "client_secret",
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "jwks_uri": None,
        "jwks": None,
        "previous_secret_expires_at": None,
        "created_at": created.data["created_at"],
        "updated_at": created.data["created_at"],
        "client_secret": created.secret,
    }
    assert looks_like_secret(created.secret)


def test_created_secret_authenticates(tessera: Tessera, created: Created) -> None:
    assert tessera.check_secret("billing", created.secret, time.time()) == "ok"


def test_show_prints_the_client_without_its_secret(
    tessera: Tessera, created: Created
) -> None:
    result = tessera("clients", "show", "billing", "--json")

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown == {k: v for k, v in created.data.items() if k != "client_secret"}
    for form in _secret_forms(tessera, created.secret):
        assert form not in result.stdout
    assert "secret_hash" not in result.stdout


def test_list_prints_clients_without_secrets(
    tessera: Tessera, created: Created
) -> None:
    result = tessera("clients", "list", "--json")

    assert result.returncode == 0, result.stderr
    listed = {entry["client_id"]: entry for entry in json.loads(result.stdout)}
    assert listed["billing"] == {
        k: v for k, v in created.data.items() if k != "client_secret"
    }
    for form in _secret_forms(tessera, created.secret):
        assert form not in result.stdout
    shown = result.stdout.replace("previous_secret_expires_at", "")
    assert "secret" not in shown.replace('"auth_method": "client_secret"', "")


REFUSED_CREATES = {
    "reserved client id": (
        ["policy:deploy", "--audience", "https://api.example"],
        "Error: Invalid value for CLIENT_ID: ids starting with 'policy:' are reserved",
    ),
    "invalid client id": (
        ["bad name!", "--audience", "https://api.example"],
        "Error: Invalid value for CLIENT_ID: "
        "use letters, digits and . _ : - (at most 128)",
    ),
    "no audience": (
        ["no-audience", "--scope", "read"],
        "Error: Invalid value for --audience: give at least one",
    ),
    "default scope outside scope": (
        [
            "wide-default",
            "--scope",
            "read",
            "--default-scope",
            "read write",
            "--audience",
            "https://api.example",
        ],
        "Error: Invalid value for --default-scope: must be among --scope",
    ),
}


@pytest.fixture(scope="module")
def refused_creates(tessera: Tessera) -> dict[str, subprocess.CompletedProcess[str]]:
    return tessera.run_many(
        {
            case: ["clients", "create", *args]
            for case, (args, _) in REFUSED_CREATES.items()
        }
    )


@pytest.mark.parametrize("case", REFUSED_CREATES)
def test_create_refuses_bad_input(
    tessera: Tessera,
    refused_creates: dict[str, subprocess.CompletedProcess[str]],
    case: str,
) -> None:
    args, error = REFUSED_CREATES[case]

    result = refused_creates[case]

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == error
    assert tessera.client(args[0]) is None


def test_create_of_an_existing_client_fails(tessera: Tessera, created: Created) -> None:
    result = tessera(
        "clients", "create", "billing", "--audience", "https://other.example"
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "Error: client billing already exists\n"
    assert tessera.check_secret("billing", created.secret, time.time()) == "ok"


def test_update_changes_scopes_audiences_and_ttl(tessera: Tessera) -> None:
    secret = tessera.add_client("to-update")

    result = tessera(
        "clients", "update", "to-update",
        "--scope", "read write",
        "--audience", "https://new.example", "--audience", "urn:y",
        "--token-ttl", "120",
        "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert {k: shown[k] for k in ("scopes", "default_scopes", "audiences")} == {
        "scopes": ["read", "write"],
        "default_scopes": ["read", "write"],
        "audiences": ["https://new.example", "urn:y"],
    }
    assert shown["token_ttl"] == 120
    stored = tessera.client("to-update")
    assert stored is not None
    assert stored.scopes == frozenset({"read", "write"})
    assert stored.audiences == ("https://new.example", "urn:y")
    assert stored.token_ttl == 120
    assert tessera.check_secret("to-update", secret, time.time()) == "ok"


def test_update_refuses_a_default_scope_outside_the_scopes(tessera: Tessera) -> None:
    tessera.add_client("narrow")
    before = tessera.client("narrow")

    result = tessera("clients", "update", "narrow", "--default-scope", "admin")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --default-scope: must be among the client's scopes"
    )
    assert tessera.client("narrow") == before


@dataclass
class Rotated:
    result: subprocess.CompletedProcess[str]
    old: str
    new: str
    before: int
    after: int


@pytest.fixture(scope="module")
def rotated(tessera: Tessera) -> Rotated:
    old = tessera.add_client("rotating")
    before = int(time.time())
    result = tessera("clients", "rotate-secret", "rotating", "--grace", "10m", "--json")
    after = int(time.time())
    new = json.loads(result.stdout)["client_secret"] if result.returncode == 0 else ""
    return Rotated(result, old, new, before, after)


def test_rotate_secret_prints_a_new_secret(rotated: Rotated) -> None:
    assert rotated.result.returncode == 0, rotated.result.stderr
    assert looks_like_secret(rotated.new)
    assert rotated.new != rotated.old
    expires = json.loads(rotated.result.stdout)["previous_secret_expires_at"]
    assert rotated.before + 600 <= expires <= rotated.after + 600


def test_both_secrets_work_within_the_grace_period(
    tessera: Tessera, rotated: Rotated
) -> None:
    client = tessera.client("rotating")
    assert client is not None and client.previous_secret_expires_at is not None
    deadline = client.previous_secret_expires_at

    assert tessera.check_secret("rotating", rotated.new, time.time()) == "ok"
    assert tessera.check_secret("rotating", rotated.old, time.time()) == "ok"
    assert tessera.check_secret("rotating", rotated.old, deadline - 1) == "ok"
    assert tessera.check_secret("rotating", rotated.old, deadline) == "wrong secret"
    assert tessera.check_secret("rotating", rotated.new, deadline) == "ok"


def test_rotate_secret_without_grace_ends_the_old_secret_at_once(
    tessera: Tessera,
) -> None:
    old = tessera.add_client("rotating-now")

    result = tessera("clients", "rotate-secret", "rotating-now")

    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    new = lines["client_secret"]
    assert looks_like_secret(new)
    assert lines["previous_secret_expires_at"] == ""
    assert tessera.check_secret("rotating-now", new, time.time()) == "ok"
    assert tessera.check_secret("rotating-now", old, time.time()) == "wrong secret"


def test_disable_stops_authentication(tessera: Tessera) -> None:
    secret = tessera.add_client("to-disable")

    result = tessera("clients", "disable", "to-disable")

    assert (result.returncode, result.stdout) == (0, "client to-disable disabled\n")
    assert tessera.check_secret("to-disable", secret, time.time()) == (
        "client disabled"
    )


def test_delete_removes_the_client_and_show_then_fails(tessera: Tessera) -> None:
    tessera.add_client("to-delete")

    deleted = tessera("clients", "delete", "to-delete")
    shown = tessera("clients", "show", "to-delete")

    assert (deleted.returncode, deleted.stdout) == (0, "client to-delete deleted\n")
    assert tessera.client("to-delete") is None
    assert (shown.returncode, shown.stdout) == (1, "")
    assert shown.stderr == "Error: no client to-delete\n"


def test_audit_log_records_changes_without_secrets(
    tessera: Tessera, created: Created, rotated: Rotated
) -> None:
    events = tessera.audit_events()

    summaries = [{k: v for k, v in e.items() if k != "ts"} for e in events]
    assert {"event": "client.created", "client_id": "billing"} in summaries
    assert {
        "event": "client.secret_rotated",
        "client_id": "rotating",
        "grace": 600,
    } in summaries
    text = tessera.audit_log.read_text()
    for secret in (created.secret, rotated.old, rotated.new):
        for form in _secret_forms(tessera, secret):
            assert form not in text
