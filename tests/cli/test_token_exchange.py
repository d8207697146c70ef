"""``tessera token exchange`` against a stand-in token endpoint that records
what it is sent and answers a canned RFC 8693 response."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tessera.core.exchange import ID_TOKEN_TYPE, JWT_TYPE, TOKEN_EXCHANGE
from tests.cli.conftest import Tessera, make_tessera
from tests.support import free_port

SUBJECT_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyZXBvOm9jdG8vYXBwIn0.c2lnbmF0dXJl"
GRANTED = {
    "access_token": "issued-access-token",
    "token_type": "Bearer",
    "expires_in": 300,
    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    "scope": "deploy read",
}
# What the stand-in answers, by the first segment of the request path.
REPLIES: dict[str, tuple[int, bytes]] = {
    "ok": (200, json.dumps(GRANTED).encode()),
    "denied": (
        400,
        json.dumps(
            {"error": "invalid_grant", "error_description": "No policy matched."}
        ).encode(),
    ),
    "bare-error": (400, b'{"error": "invalid_request"}'),
    "broken": (502, b"<html>bad gateway</html>"),
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    form: list[tuple[str, str]]


@dataclass
class Endpoint:
    base: str
    received: dict[str, list[Received]] = field(default_factory=dict)

    def url(self, reply: str) -> str:
        return f"{self.base}/{reply}"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    port = free_port()
    recorder = Endpoint(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = self.path.split("/")[1]
            recorder.received.setdefault(reply, []).append(
                Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    parse_qsl(body.decode(), keep_blank_values=True),
                )
            )
            status, content = REPLIES[reply]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    return make_tessera(tmp_path_factory, "cli-token")


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("token") / "token"
    # As `echo "$TOKEN" > file` writes it.
    path.write_text(SUBJECT_TOKEN + "\n")
    return path


Results = dict[str, subprocess.CompletedProcess[str]]
ENV = {"CI_TOKEN": SUBJECT_TOKEN, "CLIENT_SECRET": "s3cr+t/=x", "EMPTY": ""}


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def results(
    tessera: Tessera, endpoint: Endpoint, token_file: Path, closed_port: int
) -> Results:
    """Every command of this module, side by side."""
    exchange = ["token", "exchange"]
    from_file = ["--subject-token-file", str(token_file)]
    return tessera.run_many(
        {
            "ok": [
                *exchange, "--url", endpoint.url("ok"), *from_file,
                "--subject-token-type", "id_token",
                "--resource", "https://api.example/v1",
                "--audience", "https://api.example", "--audience", "urn:ledger",
                "--scope", "deploy read", "--scope", "deploy",
            ],
            "json": [
                *exchange, "--url", endpoint.url("ok") + "/", *from_file, "--json",
            ],
            "client": [
                *exchange, "--url", endpoint.url("ok"),
                "--subject-token-env", "CI_TOKEN",
                "--client-id", "ci:deployer", "--client-secret-env", "CLIENT_SECRET",
            ],
            "denied": [*exchange, "--url", endpoint.url("denied"), *from_file],
            "bare-error": [*exchange, "--url", endpoint.url("bare-error"), *from_file],
            "broken": [*exchange, "--url", endpoint.url("broken"), *from_file],
            "settings url": [*exchange, "--subject-token-env", "CI_TOKEN"],
            "unreachable": [
                *exchange, "--url", f"http://127.0.0.1:{closed_port}", *from_file,
            ],
            "two token sources": [
                *exchange, "--url", endpoint.url("ok"),
                *from_file, "--subject-token-env", "CI_TOKEN",
            ],
            "no token source": [*exchange, "--url", endpoint.url("ok")],
            "empty variable": [
                *exchange, "--url", endpoint.url("ok"),
                "--subject-token-env", "EMPTY",
            ],
            "missing file": [
                *exchange, "--url", endpoint.url("ok"),
                "--subject-token-file", str(token_file.parent / "nothing"),
            ],
            "id without secret": [
                *exchange, "--url", endpoint.url("ok"), *from_file,
                "--client-id", "ci",
            ],
            "plain http": [
                *exchange, "--url", "http://tessera.example", *from_file,
            ],
        },
        env={**ENV, "TESSERA_ISSUER": endpoint.url("ok") + "/settings"},
    )  # fmt: skip


def _only(endpoint: Endpoint, reply: str, path_part: str = "") -> list[Received]:
    return [r for r in endpoint.received.get(reply, []) if path_part in r.path]


def test_exchange_posts_rfc_8693_and_prints_the_token_alone(
    results: Results, endpoint: Endpoint
) -> None:
    result = results["ok"]

    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("issued-access-token\n", "")
    (received,) = [
        r
        for r in _only(endpoint, "ok")
        if ("subject_token_type", ID_TOKEN_TYPE) in r.form
    ]
    assert received.path == "/ok/oauth2/token"
    assert received.form == [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", SUBJECT_TOKEN),
        ("subject_token_type", ID_TOKEN_TYPE),
        ("resource", "https://api.example/v1"),
        ("audience", "https://api.example"),
        ("audience", "urn:ledger"),
        ("scope", "deploy read"),
    ]
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    assert received.headers["accept"] == "application/json"
    assert "authorization" not in received.headers


def test_exchange_prints_the_whole_response_with_json(
    results: Results, endpoint: Endpoint
) -> None:
    result = results["json"]

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == GRANTED
    forms = [r.form for r in _only(endpoint, "ok", "/ok/oauth2/token")]
    assert [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", SUBJECT_TOKEN),
        ("subject_token_type", JWT_TYPE),
    ] in forms


def test_exchange_authenticates_a_client_with_basic(
    results: Results, endpoint: Endpoint
) -> None:
    result = results["client"]

    assert result.returncode == 0, result.stderr
    assert result.stdout == "issued-access-token\n"
    (received,) = [r for r in _only(endpoint, "ok") if "authorization" in r.headers]
    # RFC 6749 §2.3.1: both parts form-encoded, then base64.
    expected = base64.b64encode(b"ci%3Adeployer:s3cr%2Bt%2F%3Dx").decode()
    assert received.headers["authorization"] == f"Basic {expected}"
    assert received.form == [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", SUBJECT_TOKEN),
        ("subject_token_type", JWT_TYPE),
    ]
    assert ENV["CLIENT_SECRET"] not in result.stdout + result.stderr


def test_exchange_defaults_to_the_configured_issuer(
    results: Results, endpoint: Endpoint
) -> None:
    result = results["settings url"]

    assert result.returncode == 0, result.stderr
    assert result.stdout == "issued-access-token\n"
    (received,) = _only(endpoint, "ok", "/settings/")
    assert received.path == "/ok/settings/oauth2/token"


@pytest.mark.parametrize(
    ("case", "stderr"),
    [
        ("denied", "error: invalid_grant (No policy matched.)\n"),
        ("bare-error", "error: invalid_request\n"),
    ],
)
def test_an_error_response_is_one_line_on_stderr(
    results: Results, endpoint: Endpoint, case: str, stderr: str
) -> None:
    result = results[case]

    assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr)
    (received,) = endpoint.received[case]
    assert received.form[1] == ("subject_token", SUBJECT_TOKEN)


@pytest.mark.parametrize(
    ("case", "status", "stderr"),
    [
        (
            "broken",
            1,
            "Error: {url}/broken/oauth2/token answered 502 with neither a token "
            "nor an OAuth error",
        ),
        (
            "unreachable",
            1,
            "Error: cannot reach http://127.0.0.1:{port}/oauth2/token (ConnectError)",
        ),
        (
            "two token sources",
            2,
            "Error: give one of --subject-token-file and --subject-token-env",
        ),
        (
            "no token source",
            2,
            "Error: give one of --subject-token-file and --subject-token-env",
        ),
        (
            "empty variable",
            2,
            "Error: Invalid value for --subject-token-env: EMPTY is not set or empty",
        ),
        (
            "missing file",
            2,
            "Error: Invalid value for --subject-token-file: cannot read {dir}/nothing "
            "(No such file or directory)",
        ),
        (
            "id without secret",
            2,
            "Error: give --client-id and --client-secret-env together",
        ),
        (
            "plain http",
            2,
            "Error: Invalid value for --url: the URL must be https, or http on a "
            "loopback host",
        ),
    ],
)
def test_exchange_fails_with_one_clear_line(
    results: Results,
    endpoint: Endpoint,
    token_file: Path,
    closed_port: int,
    case: str,
    status: int,
    stderr: str,
) -> None:
    result = results[case]

    assert result.returncode == status
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == stderr.format(
        url=endpoint.base, dir=token_file.parent, port=closed_port
    )


def test_no_output_ever_holds_the_subject_token(results: Results) -> None:
    for result in results.values():
        assert SUBJECT_TOKEN not in result.stdout + result.stderr


def test_exchange_opens_no_store(results: Results, tessera: Tessera) -> None:
    assert results["ok"].returncode == 0
    assert not tessera.data_dir.exists()
