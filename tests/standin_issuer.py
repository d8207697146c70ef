"""Test support: a real ``tessera demo-issuer`` process on a loopback port,
playing the external OIDC issuers (GitHub Actions, GitLab CI, Kubernetes)
whose tokens workload identity federation accepts."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.support import free_port

START_TIMEOUT = 20.0
# Passed as ``kid`` to ``mint``: the signing key's own kid (the default).
SIGNING_KEY_KID = object()


class StandinIssuer:
    """A ``tessera demo-issuer`` child process and a client for its API.

    ``args`` are extra command-line options, for example
    ``("--environment", "production")``. The request counters start at zero
    once the process answers."""

    def __init__(self, *args: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.request_token = secrets.token_urlsafe(16)
        # Closed by stop(), which outlives any one block of the caller's.
        self._output = tempfile.TemporaryFile()  # noqa: SIM115
        command = [sys.executable, "-m", "tessera", "demo-issuer", "--port", str(port)]
        self.process = subprocess.Popen(
            [*command, "--request-token", self.request_token, *args],
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        self._http = httpx.Client(base_url=self.url, timeout=15)
        try:
            self._wait_until_ready()
            self._http.delete("/requests").raise_for_status()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"demo-issuer exited:\n{self.output()}")
            try:
                discovery = self._http.get(
                    "/.well-known/openid-configuration", timeout=1
                )
                if discovery.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"demo-issuer did not start:\n{self.output()}")

    def output(self) -> str:
        """What the process has printed so far."""
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def github_token(self, audience: str) -> str:
        """A token requested as a GitHub Actions workflow requests one."""
        response = self._http.get(
            "/token",
            params={"api-version": "2.0", "audience": audience},
            headers={"Authorization": f"bearer {self.request_token}"},
        )
        response.raise_for_status()
        return str(response.json()["value"])

    def mint(
        self,
        profile: str,
        audience: str | list[str],
        claims: dict[str, Any] | None = None,
        ttl: int = 300,
        alg: str = "RS256",
        key: str = "current",
        kid: object = SIGNING_KEY_KID,
    ) -> str:
        """A token of ``profile`` ("github", "gitlab" or "kubernetes");
        ``claims`` override the defaults, None deleting one; ``kid=None``
        leaves the kid header out."""
        body: dict[str, Any] = {
            "profile": profile,
            "audience": audience,
            "claims": claims,
            "ttl": ttl,
            "alg": alg,
            "key": key,
        }
        if kid is not SIGNING_KEY_KID:
            body["kid"] = kid
        response = self._http.post("/mint", json=body)
        response.raise_for_status()
        return str(response.json()["token"])

    def rotate(self, drop_old: bool = False) -> list[str]:
        """New signing keys; returns the kids now published."""
        response = self._http.post("/rotate", json={"drop_old": drop_old})
        response.raise_for_status()
        return list(response.json()["kids"])

    def faults(self, jwks: str = "ok") -> None:
        """Make the JWKS endpoint "down", "slow", "garbage", or "ok" again."""
        self._http.post("/faults", json={"jwks": jwks}).raise_for_status()

    def requests(self) -> dict[str, int]:
        """How many JWKS and discovery requests the issuer has served."""
        response = self._http.get("/requests")
        response.raise_for_status()
        return dict(response.json())

    def jwks(self) -> dict[str, Any]:
        """The published key set; this counts as a JWKS request."""
        response = self._http.get("/.well-known/jwks")
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        self._http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._output.close()

    def __enter__(self) -> StandinIssuer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def running_standin(*args: str) -> Iterator[StandinIssuer]:
    issuer = StandinIssuer(*args)
    try:
        yield issuer
    finally:
        issuer.stop()
