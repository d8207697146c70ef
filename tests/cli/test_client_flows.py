"""``tessera clients``: grants, redirect URIs and public clients."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.cli.conftest import Tessera, make_tessera

WEB = [
    "--scope", "openid profile read",
    "--grant-type", "authorization_code", "--grant-type", "refresh_token",
    "--redirect-uri", "https://app.example/cb",
    "--redirect-uri", "http://127.0.0.1/cb",
    "--redirect-uri", "http://[::1]/cb",
    "--redirect-uri", "com.example.app:/cb",
    "--post-logout-redirect-uri", "https://app.example/bye",
]  # fmt: skip


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    return make_tessera(tmp_path_factory, "cli-client-flows")


def test_web_client_is_registered_with_its_redirect_uris(tessera: Tessera) -> None:
    result = tessera("clients", "create", "web", *WEB, "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["grant_types"] == ["authorization_code", "refresh_token"]
    assert data["redirect_uris"] == [
        "https://app.example/cb",
        "http://127.0.0.1/cb",
        "http://[::1]/cb",
        "com.example.app:/cb",
    ]
    assert data["post_logout_redirect_uris"] == ["https://app.example/bye"]
    assert data["auth_method"] == "client_secret"
    assert data["audiences"] == []
    assert "client_secret" in data
    stored = tessera.client("web")
    assert stored is not None
    assert stored.redirect_uris == tuple(data["redirect_uris"])

    listed = tessera("clients", "list")
    assert "\thttps://app.example/cb http://127.0.0.1/cb" in listed.stdout


def test_public_client_has_no_secret(tessera: Tessera) -> None:
    result = tessera(
        "clients", "create", "native", "--public", "--scope", "openid",
        "--redirect-uri", "http://127.0.0.1/callback", "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["auth_method"] == "none"
    assert data["grant_types"] == ["authorization_code"]
    assert "client_secret" not in data
    assert "secret" not in result.stderr


def test_update_replaces_the_redirect_uris(tessera: Tessera) -> None:
    tessera("clients", "create", "web2", *WEB)

    result = tessera(
        "clients", "update", "web2", "--redirect-uri", "https://app.example/new",
        "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["redirect_uris"] == ["https://app.example/new"]
    events = [e for e in tessera.audit_events() if e["event"] == "client.updated"]
    assert events[-1]["fields"] == ["redirect_uris"]


BASE = ["--scope", "openid", "--grant-type", "authorization_code"]
REFUSED = {
    "localhost": (
        [*BASE, "--redirect-uri", "http://localhost:8080/cb"],
        "Error: Invalid value for --redirect-uri: 'http://localhost:8080/cb' "
        "http is allowed only on 127.0.0.1 or [::1] (not localhost)",
    ),
    "plain http": (
        [*BASE, "--redirect-uri", "http://app.example/cb"],
        "Error: Invalid value for --redirect-uri: 'http://app.example/cb' "
        "http is allowed only on 127.0.0.1 or [::1] (not localhost)",
    ),
    "fragment": (
        [*BASE, "--redirect-uri", "https://app.example/cb#done"],
        "Error: Invalid value for --redirect-uri: 'https://app.example/cb#done' "
        "must not have a fragment",
    ),
    "wildcard": (
        [*BASE, "--redirect-uri", "https://*.app.example/cb"],
        "Error: Invalid value for --redirect-uri: 'https://*.app.example/cb' "
        "must not contain a wildcard",
    ),
    "relative": (
        [*BASE, "--redirect-uri", "/cb"],
        "Error: Invalid value for --redirect-uri: '/cb' "
        "must be an absolute URI with a lower-case scheme",
    ),
    "userinfo": (
        [*BASE, "--redirect-uri", "https://user@app.example/cb"],
        "Error: Invalid value for --redirect-uri: 'https://user@app.example/cb' "
        "an https URI needs a host and no user information",
    ),
    "javascript": (
        [*BASE, "--redirect-uri", "javascript:alert(1)"],
        "Error: Invalid value for --redirect-uri: 'javascript:alert(1)' "
        "use https, loopback http, or a private-use scheme like com.example.app",
    ),
    "post-logout http": (
        [
            *BASE,
            "--redirect-uri", "https://app.example/cb",
            "--post-logout-redirect-uri", "http://app.example/bye",
        ],
        "Error: Invalid value for --post-logout-redirect-uri: "
        "'http://app.example/bye' "
        "http is allowed only on 127.0.0.1 or [::1] (not localhost)",
    ),
    "code grant without redirect": (
        BASE,
        "Error: Invalid value for --redirect-uri: the authorization_code grant "
        "needs at least one",
    ),
    "redirect without code grant": (
        ["--scope", "read", "--audience", "https://api.example",
         "--redirect-uri", "https://app.example/cb"],
        "Error: redirect URIs are for clients with --grant-type authorization_code",
    ),
    "public with client_credentials": (
        ["--public", "--scope", "openid", "--grant-type", "authorization_code",
         "--grant-type", "client_credentials",
         "--redirect-uri", "https://app.example/cb"],
        "Error: Invalid value for --grant-type: a public client has no "
        "credentials: only authorization_code and refresh_token",
    ),
    "client_credentials without audience": (
        ["--scope", "read"],
        "Error: Invalid value for --audience: give at least one",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def refused(tessera: Tessera) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every refused registration, run side by side, once the store exists
    (two first runs would both create it)."""
    tessera("clients", "list")
    return tessera.run_many(
        {
            name: ["clients", "create", f"refused-{number}", *args]
            for number, (name, (args, _)) in enumerate(REFUSED.items())
        }
    )


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_registration(
    tessera: Tessera, refused: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    result = refused[name]

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == REFUSED[name][1]
    number = list(REFUSED).index(name)
    assert tessera.client(f"refused-{number}") is None
