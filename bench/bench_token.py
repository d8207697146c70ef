"""Token-endpoint throughput and latency against the bare-ASGI ceiling.

Run:  .venv/bin/python bench/bench_token.py [--duration 8] [--rounds 3] [--alg ES256]

Needs `wrk` (Debian package `wrk`). Starts (a) bench/bare_asgi.py and
(b) `tessera serve` with a temporary SQLite store, each a single uvicorn
process with the same settings on its own loopback port. Then, for each
round, drives each server in turn with wrk at concurrency 16 and 64 (one wrk
thread, so the server keeps a core of the two). Rounds interleave the two
servers so that a slow spell of the machine hits both; the best round of
each is kept. Prints a table with ratios to the ceiling and one JSON line.
The load is bounded by --duration and --rounds and targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tessera.cli.context import operator
from tessera.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (16, 64)

LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic {basic}"
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    command: list[str], env: dict[str, str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command} did not start")
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_wrk(
    url: str,
    script: Path,
    connections: int,
    duration: int,
    *,
    threads: int = 1,
    timeout: int = 2,
    args: list[str] | None = None,
) -> dict[str, float]:
    """One wrk run; ``args`` go to the script's init(). A request slower
    than ``timeout`` seconds counts as an error."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
    command += [f"--timeout={timeout}s", "--latency", "-s", str(script), url]
    if args:
        command += ["--", *args]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError("the benchmark saw errors:\n" + output)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = {}
    for pct in ("50", "99"):
        found = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", output)
        assert found is not None
        value, unit = found.groups()
        latency[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
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

        bare_port, token_port = free_port(), free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning"]
        uvicorn += ["--no-access-log", "--host", "127.0.0.1", "--port", str(bare_port)]
        bare_env = {**os.environ, "PYTHONPATH": str(ROOT / "bench")}
        token_env = {
            **os.environ,
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_PORT": str(token_port),
            "TESSERA_AUDIT_LOG": os.devnull,
            "TESSERA_DEFAULT_SIGNING_ALG": args.alg,
            "TESSERA_LOG_LEVEL": "warning",
            # Throughput is measured here, not the limits' refusals.
            "TESSERA_RATE_LIMIT_PER_CLIENT": "0",
            "TESSERA_RATE_LIMIT_PER_SOURCE": "0",
        }
        targets = {
            "bare": f"http://127.0.0.1:{bare_port}/",
            "token": f"http://127.0.0.1:{token_port}/oauth2/token",
        }
        best: dict[str, dict[int, dict[str, float]]] = {"bare": {}, "token": {}}
        with (
            serving([*uvicorn, "bare_asgi:app"], bare_env, bare_port),
            serving([sys.executable, "-m", "tessera", "serve"], token_env, token_port),
        ):
            for url in targets.values():
                run_wrk(url, script, 16, 2)  # warm-up
            for _ in range(args.rounds):
                for concurrency in CONCURRENCY:
                    for name, url in targets.items():
                        result = run_wrk(url, script, concurrency, args.duration)
                        kept = best[name].get(concurrency)
                        if kept is None or result["rps"] > kept["rps"]:
                            best[name][concurrency] = result

    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, alg {args.alg}, "
        f"best of {args.rounds} rounds of {args.duration} s"
    )
    print(
        f"{'concurrency':>11} {'bare rps':>10} {'token rps':>10} {'ratio':>6} "
        f"{'bare p50/p99 ms':>16} {'token p50/p99 ms':>17}"
    )
    for c in CONCURRENCY:
        bare, token = best["bare"][c], best["token"][c]
        print(
            f"{c:>11} {bare['rps']:>10.0f} {token['rps']:>10.0f} "
            f"{token['rps'] / bare['rps']:>6.1%} "
            f"{bare['p50_ms']:>7.2f}/{bare['p99_ms']:<8.2f} "
            f"{token['p50_ms']:>8.2f}/{token['p99_ms']:<8.2f}"
        )
    print(json.dumps({"alg": args.alg, **best}))


if __name__ == "__main__":
    main()
