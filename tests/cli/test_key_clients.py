"""``tessera clients`` for private_key_jwt clients: their public keys inline
(--jwks-file) or at a URL (--jwks-uri), checked on the way in, and no
secret ever printed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Tessera, make_tessera
from tests.client_keys import jwks, make_key

KEY = make_key("ES256", "k1")
RSA = make_key("RS256", "r1")
URI = "https://app.example/.well-known/jwks.json"


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    return make_tessera(tmp_path_factory, "cli-key-clients")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """JWK Sets to hand to --jwks-file, good and bad, by name."""
    folder = tmp_path_factory.mktemp("jwks")
    private = {**KEY.jwk, "d": "c2VjcmV0LWJ1dC1ub3QtcmVhbGx5LWEta2V5LWF0LWFsbA"}
    weak_rsa = {"kty": "RSA", "kid": "weak", "n": "AQAB" * 8, "e": "AQAB"}
    documents: dict[str, Any] = {
        "good": jwks(KEY, RSA),
        "rotated": jwks(make_key("EdDSA", "e1")),
        "private": {"keys": [private]},
        "symmetric": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]},
        "weak": {"keys": [KEY.jwk, weak_rsa]},
        "empty": {"keys": []},
        "not a set": [KEY.jwk],
    }
    paths = {}
    for name, document in documents.items():
        path = folder / (name.replace(" ", "-") + ".json")
        path.write_text(json.dumps(document))
        paths[name] = path
    broken = folder / "broken.json"
    broken.write_text('{"keys": [')
    paths["broken"] = broken
    return paths


def created(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_create_with_a_jwks_file_prints_no_secret(
    tessera: Tessera, files: dict[str, Path]
) -> None:
    result = tessera(
        "clients", "create", "signer",
        "--auth-method", "private_key_jwt", "--jwks-file", str(files["good"]),
        "--audience", "https://api.example", "--scope", "read",
        "--json",
    )  # fmt: skip

    data = created(result)
    assert result.stderr == ""
    assert "client_secret" not in data
    assert (data["auth_method"], data["jwks_uri"]) == ("private_key_jwt", None)
    assert data["jwks"] == jwks(KEY, RSA)
    stored = tessera.client("signer")
    assert stored is not None and stored.auth_method == "private_key_jwt"
    assert stored.jwks is not None and json.loads(stored.jwks) == jwks(KEY, RSA)
    # Its stored hash is of no secret anyone holds; secrets are refused anyway.
    assert tessera.check_secret("signer", "", time.time()) == (
        "client does not authenticate with a secret"
    )


def test_create_with_a_jwks_uri_and_show_and_list_it(tessera: Tessera) -> None:
    result = tessera(
        "clients", "create", "publisher",
        "--auth-method", "private_key_jwt", "--jwks-uri", URI,
        "--audience", "https://api.example",
    )  # fmt: skip
    shown = tessera.run_many(
        {"show": ["clients", "show", "publisher"], "list": ["clients", "list"]}
    )

    assert result.returncode == 0, result.stderr
    assert "secret" not in result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert (lines["auth_method"], lines["jwks_uri"]) == ("private_key_jwt", URI)
    show = dict(line.split(": ", 1) for line in shown["show"].stdout.splitlines())
    assert (show["auth_method"], show["jwks_uri"], show["jwks"]) == (
        "private_key_jwt",
        URI,
        "",
    )
    assert f"publisher\tenabled\tprivate_key_jwt\t{URI}\t" in shown["list"].stdout


REFUSED = {
    "private key": (
        ["--jwks-file", "private"],
        "Error: Invalid value for --jwks-file: key 1 (k1) is a private or "
        "symmetric key; give the public keys only",
    ),
    "symmetric key": (
        ["--jwks-file", "symmetric"],
        "Error: Invalid value for --jwks-file: key 1 (s) is a private or "
        "symmetric key; give the public keys only",
    ),
    "weak key": (
        ["--jwks-file", "weak"],
        "Error: Invalid value for --jwks-file: key 2 (weak): RSA key shorter "
        "than 2048 bits",
    ),
    "empty set": (
        ["--jwks-file", "empty"],
        "Error: Invalid value for --jwks-file: no usable signing key",
    ),
    "not a set": (
        ["--jwks-file", "not a set"],
        "Error: Invalid value for --jwks-file: not a JWK Set",
    ),
    "not JSON": (
        ["--jwks-file", "broken"],
        "Error: Invalid value for --jwks-file: cannot read a JSON document "
        "(JSONDecodeError)",
    ),
    "plain http": (
        ["--jwks-uri", "http://app.example/jwks.json"],
        "Error: Invalid value for --jwks-uri: jwks_uri must be https, or http "
        "on a loopback host",
    ),
    "both sources": (
        ["--jwks-file", "good", "--jwks-uri", URI],
        "Error: give either --jwks-file or --jwks-uri",
    ),
    "no source": ([], "Error: give either --jwks-file or --jwks-uri"),
    "keys for a secret client": (
        ["--auth-method", "client_secret", "--jwks-uri", URI],
        "Error: --jwks-file and --jwks-uri need --auth-method private_key_jwt",
    ),
}


@pytest.fixture(scope="module")
def refused(
    tessera: Tessera, files: dict[str, Path]
) -> dict[str, subprocess.CompletedProcess[str]]:
    commands = {}
    for number, (case, (args, _)) in enumerate(REFUSED.items()):
        resolved = [str(files[a]) if a in files else a for a in args]
        if "--auth-method" not in resolved:
            resolved = ["--auth-method", "private_key_jwt", *resolved]
        commands[case] = [
            "clients", "create", f"refused-{number}",
            "--audience", "https://api.example", *resolved,
        ]  # fmt: skip
    return tessera.run_many(commands)


@pytest.mark.parametrize("case", REFUSED)
def test_create_refuses_unusable_keys(
    tessera: Tessera, refused: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    result = refused[case]

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == REFUSED[case][1]
    assert "c2VjcmV0" not in result.stderr
    client_id = f"refused-{list(REFUSED).index(case)}"
    assert tessera.client(client_id) is None


def test_update_replaces_where_the_keys_come_from(
    tessera: Tessera, files: dict[str, Path]
) -> None:
    tessera(
        "clients", "create", "moving",
        "--auth-method", "private_key_jwt", "--jwks-uri", URI,
        "--audience", "https://api.example",
    )  # fmt: skip

    inline = tessera(
        "clients", "update", "moving", "--jwks-file", str(files["rotated"]), "--json"
    )
    stored = tessera.client("moving")
    back = tessera("clients", "update", "moving", "--jwks-uri", URI + "?v=2")

    assert created(inline)["jwks"] == jwks(make_key("EdDSA", "e1"))
    assert created(inline)["jwks_uri"] is None
    assert stored is not None and stored.jwks_uri is None
    assert back.returncode == 0, back.stderr
    after = tessera.client("moving")
    assert after is not None
    assert (after.jwks, after.jwks_uri) == (None, URI + "?v=2")


def test_a_secret_client_gets_no_keys_and_a_key_client_no_secret(
    tessera: Tessera,
) -> None:
    secret = tessera.add_client("with-secret")
    tessera(
        "clients", "create", "with-keys",
        "--auth-method", "private_key_jwt", "--jwks-uri", URI,
        "--audience", "https://api.example",
    )  # fmt: skip

    results = tessera.run_many(
        {
            "keys": ["clients", "update", "with-secret", "--jwks-uri", URI],
            "secret": ["clients", "rotate-secret", "with-keys"],
        }
    )

    assert results["keys"].returncode == 2
    assert results["keys"].stderr.splitlines()[-1] == (
        "Error: client with-secret authenticates with a secret, not with keys"
    )
    assert tessera.check_secret("with-secret", secret, time.time()) == "ok"
    assert results["secret"].returncode == 2
    assert results["secret"].stdout == ""
    assert results["secret"].stderr.splitlines()[-1] == (
        "Error: client with-keys authenticates with private_key_jwt and has no "
        "secret; change its keys with clients update"
    )
