"""``tessera demo``: the client-credentials flow, step by step, against a
real token service and the demo API, each in its own process on loopback.

Secrets and tokens are never printed whole: a secret shows as its prefix, a
token as its first characters and length, next to its decoded claims."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tessera.cli.context import operator
from tessera.config import Settings

API_AUDIENCE = "https://demo-api.local"
Echo = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited during start-up")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    process = subprocess.Popen(  # noqa: S603 (our own command, fixed arguments)
        [sys.executable, "-m", "tessera", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(ready, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _register(
    settings: Settings,
    client_id: str,
    scopes: str,
    audience: str,
    *,
    may_introspect: bool = False,
) -> str:
    async def go() -> str:
        async with operator(settings) as op:
            return await op.register(
                client_id,
                scopes=frozenset(scopes.split()),
                audiences=(audience,),
                may_introspect=may_introspect,
            )

    return asyncio.run(go())


def redact(value: str) -> str:
    if value.startswith("tsec_"):
        return "tsec_…(secret)"
    if value.count(".") == 2 and len(value) > 40:
        return f"{value[:16]}…({len(value)} characters)"
    return value


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Walkthrough:
    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.http = httpx.Client(timeout=10)
        self.surprises: list[str] = []

    def call(
        self,
        method: str,
        url: str,
        *,
        note: str,
        expect: int,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        self.echo(f"\n--- {note}")
        self.echo(f"> {method} {url}")
        if auth:
            self.echo("> Authorization: Basic base64(client_id:client_secret)")
        for name, value in (headers or {}).items():
            shown = " ".join(redact(part) for part in value.split(" "))
            self.echo(f"> {name}: {shown}")
        if data:
            shown_data = {name: redact(value) for name, value in data.items()}
            self.echo(f"> (form) {shown_data}")
        response = self.http.request(method, url, headers=headers, data=data, auth=auth)
        self.echo(f"< {response.status_code} {response.reason_phrase}")
        for name in ("www-authenticate", "cache-control", "retry-after"):
            if name in response.headers:
                self.echo(f"< {name}: {response.headers[name]}")
        if response.content:
            self.echo(f"< {_shown_body(response)}")
        if response.status_code != expect:
            self.surprises.append(f"{note}: got {response.status_code}")
            self.echo(f"!!! expected {expect}")
        return response

    def token(self, issuer: str, client: tuple[str, str], scope: str) -> str:
        response = self.call(
            "POST",
            f"{issuer}/oauth2/token",
            note=f"Ask for a token with scope {scope!r}",
            expect=200,
            data={"grant_type": "client_credentials", "scope": scope},
            auth=client,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def _shown_body(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        body = {k: redact(v) if isinstance(v, str) else v for k, v in body.items()}
    return json.dumps(body, ensure_ascii=False)


def run(echo: Echo) -> None:
    """Run the walkthrough; RuntimeError if any answer was not the expected one."""
    with tempfile.TemporaryDirectory(prefix="tessera-demo-") as tmp:
        data_dir = Path(tmp)
        issuer_port, api_port = _free_port(), _free_port()
        issuer = f"http://127.0.0.1:{issuer_port}"
        api = f"http://127.0.0.1:{api_port}"
        settings = Settings(data_dir=data_dir, issuer=issuer)
        server_env = {
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_PORT": str(issuer_port),
            "TESSERA_ISSUER": issuer,
            "TESSERA_AUDIT_LOG": str(data_dir / "audit.jsonl"),
            "TESSERA_LOG_LEVEL": "warning",
        }
        ci_secret = _register(settings, "demo-ci", "demo.read demo.admin", API_AUDIENCE)
        api_secret = _register(
            settings, "demo-api", "", API_AUDIENCE, may_introspect=True
        )
        api_args = [
            "demo-api",
            f"--issuer={issuer}",
            f"--audience={API_AUDIENCE}",
            f"--port={api_port}",
            "--introspection-client-id=demo-api",
            # Ask the issuer every time, so a revocation shows at once.
            "--introspection-cache-seconds=0",
        ]
        with (
            _process(["serve"], server_env, f"{issuer}/healthz"),
            _process(
                api_args,
                {"TESSERA_DEMO_API_CLIENT_SECRET": api_secret},
                f"{api}/healthz",
            ),
        ):
            echo(
                f"Token service: {issuer}    Demo API: {api} (audience {API_AUDIENCE})"
            )
            walkthrough = Walkthrough(echo)
            with walkthrough.http:
                _steps(walkthrough, issuer, api, ("demo-ci", ci_secret))
    if walkthrough.surprises:
        raise RuntimeError("unexpected answers: " + "; ".join(walkthrough.surprises))


def _steps(w: Walkthrough, issuer: str, api: str, ci: tuple[str, str]) -> None:
    w.echo("\n== 1. Access token request: the client says who it is and what it wants")
    read_token = w.token(issuer, ci, "demo.read")

    w.echo("\n== 2. Identity validation and issuance: a signed, short-lived statement")
    w.echo(f"claims: {json.dumps(_claims(read_token), indent=2)}")
    w.call(
        "GET",
        f"{issuer}/oauth2/jwks",
        note="The keys an API checks it with",
        expect=200,
    )

    w.echo("\n== 3. Use: the client calls the API with the token")
    bearer = {"Authorization": f"Bearer {read_token}"}
    w.call("GET", f"{api}/hello", note="A valid token", expect=200, headers=bearer)

    w.echo("\n== 4. Responses: what the API answers when something is wrong")
    w.call("GET", f"{api}/hello", note="No credentials: no error code", expect=401)
    w.call(
        "GET",
        f"{api}/hello",
        note="'Bearer' with no token: invalid_request",
        expect=400,
        headers={"Authorization": "Bearer"},
    )
    w.call(
        "GET",
        f"{api}/hello",
        note="A malformed token: invalid_request",
        expect=400,
        headers={"Authorization": "Bearer not a token!"},
    )
    head, _, signature = read_token.split(".")
    forged = _claims(read_token) | {"scope": "demo.read demo.admin"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=")
    w.call(
        "GET",
        f"{api}/admin",
        note="A token whose claims were edited: invalid_token",
        expect=401,
        headers={
            "Authorization": f"Bearer {head}.{forged_payload.decode()}.{signature}"
        },
    )
    w.call(
        "GET",
        f"{api}/admin",
        note="A valid token without scope demo.admin: insufficient_scope",
        expect=403,
        headers=bearer,
    )
    admin_token = w.token(issuer, ci, "demo.admin")
    w.call(
        "GET",
        f"{api}/admin",
        note="A token with scope demo.admin",
        expect=200,
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    w.call(
        "POST",
        f"{issuer}/oauth2/revoke",
        note="The client revokes its first token (RFC 7009)",
        expect=200,
        data={"token": read_token},
        auth=ci,
    )
    w.call(
        "GET",
        f"{api}/hello",
        note="The revoked token: invalid_token",
        expect=401,
        headers=bearer,
    )
    w.echo("\nDone. Every step above ran against real processes on loopback.")
