"""Token-endpoint throughput and latency against the bare-ASGI ceiling.

Run:  .venv/bin/python bench/bench_token.py [--duration 10] [--alg ES256]

Needs `wrk` (Debian package `wrk`). Starts, one at a time on loopback ports,
(a) bench/bare_asgi.py and (b) `tessera serve` with a temporary SQLite store,
each under the same uvicorn settings, and drives each with wrk at
concurrency 16 and 64 (one wrk thread, so the server keeps a core). Prints a
table with ratios to the ceiling and one JSON line; writes nothing else.
The load is bounded by --duration and targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import free_port  # noqa: E402

from tessera.cli.context import operator  # noqa: E402
from tessera.config import Settings  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic {basic}"
"""


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run_wrk(
    url: str, script: Path, connections: int, duration: int
) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError("the benchmark saw error responses:\n" + output)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", output).groups()
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        latency[pct] = float(value) * scale
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"]}


def measure(
    command: list[str],
    env: dict[str, str],
    port: int,
    path: str,
    script: Path,
    duration: int,
) -> dict[int, dict[str, float]]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/", process)
        url = f"http://127.0.0.1:{port}{path}"
        run_wrk(url, script, 16, 2)  # warm-up
        return {c: run_wrk(url, script, c, duration) for c in (16, 64)}
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--alg", default="ES256")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is required: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = Settings(data_dir=data_dir, default_signing_alg=args.alg)

        async def setup() -> str:
            async with operator(settings) as op:
                return await op.register(
                    "bench",
                    scopes=frozenset({"read"}),
                    audiences=("https://api.example.test",),
                )

        secret = asyncio.run(setup())
        basic = base64.b64encode(f"bench:{secret}".encode()).decode()
        script = data_dir / "token.lua"
        script.write_text(LUA.format(basic=basic))

        uvicorn = [
            sys.executable,
            "-m",
            "uvicorn",
            "--log-level",
            "warning",
            "--no-access-log",
            "--host",
            "127.0.0.1",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "bench")}
        port = free_port()
        bare = measure(
            uvicorn + ["--port", str(port), "bare_asgi:app"],
            env,
            port,
            "/",
            script,
            args.duration,
        )
        port = free_port()
        tessera_env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_PORT": str(port),
            "TESSERA_AUDIT_LOG": os.devnull,
            "TESSERA_DEFAULT_SIGNING_ALG": args.alg,
            "TESSERA_LOG_LEVEL": "warning",
        }
        token = measure(
            [sys.executable, "-m", "tessera", "serve"],
            tessera_env,
            port,
            "/oauth2/token",
            script,
            args.duration,
        )

    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, alg {args.alg}"
    )
    print(
        f"{'concurrency':>11} {'bare rps':>10} {'token rps':>10} {'ratio':>6} "
        f"{'bare p50/p99 ms':>16} {'token p50/p99 ms':>17}"
    )
    for c in (16, 64):
        b, t = bare[c], token[c]
        print(
            f"{c:>11} {b['rps']:>10.0f} {t['rps']:>10.0f} "
            f"{t['rps'] / b['rps']:>6.1%} "
            f"{b['p50_ms']:>7.2f}/{b['p99_ms']:<8.2f} "
            f"{t['p50_ms']:>8.2f}/{t['p99_ms']:<8.2f}"
        )
    print(json.dumps({"alg": args.alg, "bare": bare, "token": token}))


if __name__ == "__main__":
    main()
