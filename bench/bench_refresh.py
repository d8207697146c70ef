"""Refresh-token rotations per second through the token endpoint, on SQLite
and on PostgreSQL side by side.

Run:  .venv/bin/python bench/bench_refresh.py [--duration 6] [--rounds 3]
          [--connections 16 64] [--openid] [--postgres postgresql://postgres@127.0.0.1:5432]

Needs `wrk` (Debian package `wrk`). Each response names the next request, so
wrk runs a Lua script holding a queue of refresh tokens per thread: every
request takes one from the queue, every answer puts the successor back. The
queue starts with twice as many tokens as connections, so it never runs dry;
a token whose answer is not 200 is lost, and wrk's non-2xx count (which
fails the run) says so.

Starts two `tessera serve` processes with the same settings, one on a
temporary SQLite store and one on a fresh database on the PostgreSQL server
given (dropped at the end), registers a client and a person in each, and
redeems one authorization code per queued token for its first refresh
token. Rounds interleave the two servers; the best round of each is kept.
For scale, each round also drives `client_credentials` (no database write)
with the same wrk settings: the rate a rotation is compared with.

Every rotation writes: one UPDATE of the old token and one INSERT of its
successor in one transaction, after one SELECT of the token and one of the
person. Without --openid the scope is `read`, so no ID token (one RSA-3072
signature each) is made. The load is bounded by --duration and --rounds and
targets 127.0.0.1 only; wrk shares the machine with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from bench_token import LUA, free_port, run_wrk

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.core.clients import Client
from tessera.core.secrets import generate_secret, hash_secret
from tessera.core.users import new_user
from tessera.node import open_node
from tessera.store.codes import AuthorizationCodes, IssuedCode

REDIRECT_URI = "https://app.example.test/callback"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"

# wrk: one queue of refresh tokens per thread, read from TOKENS.<thread>.
ROTATE_LUA = """
local queue, first, last = {}, 1, 0
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
end

function init(args)
  for line in io.lines(args[1] .. "." .. id) do
    last = last + 1
    queue[last] = line
  end
end

function request()
  local token = queue[first]
  queue[first] = nil
  first = first + 1
  return wrk.format("POST", "/oauth2/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic BASIC",
  }, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"(trt_[%w_%-]+)"')
  if token then
    last = last + 1
    queue[last] = token
  end
end
"""
THREADS = 2


@dataclasses.dataclass
class Target:
    name: str
    settings: Settings
    env: dict[str, str]
    port: int
    secret: str = ""
    user_id: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def target(name: str, data_dir: Path, database_url: str) -> Target:
    port = free_port()
    env = {
        **os.environ,
        "TESSERA_DATA_DIR": str(data_dir),
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_PORT": str(port),
        "TESSERA_AUDIT_LOG": os.devnull,
        "TESSERA_LOG_LEVEL": "warning",
        # Throughput is measured here, not the limits' refusals.
        "TESSERA_RATE_LIMIT_PER_CLIENT": "0",
        "TESSERA_RATE_LIMIT_PER_SOURCE": "0",
    }
    settings = Settings(
        data_dir=data_dir, database_url=database_url, issuer=f"http://127.0.0.1:{port}"
    )
    return Target(name, settings, env, port)


async def register(target: Target) -> None:
    """A confidential client of the code flow, and a person."""
    secret = generate_secret()
    person = new_user("bench", name="Bench Person", email="bench@example.test")
    async with operator(target.settings) as op:
        client = Client.register(
            "bench",
            hash_secret(op.pepper, secret),
            scopes=frozenset({"openid", "read"}),
            audiences=("https://api.example.test",),
            grant_types=frozenset(
                {"authorization_code", "refresh_token", "client_credentials"}
            ),
        )
        await op.clients.create(
            dataclasses.replace(client, redirect_uris=(REDIRECT_URI,))
        )
        await op.users.create(person, "$argon2id$v=19$m=19456,t=2,p=1$x$x")
    target.secret, target.user_id = secret, person.user_id


async def first_tokens(target: Target, count: int, scope: str) -> list[str]:
    """One refresh token per chain, each from its own code."""
    node = await open_node(target.settings, time.time)
    try:
        codes = AuthorizationCodes(node.sessions)
        now = int(time.time())
        issued = [
            await codes.issue(
                IssuedCode(
                    client_id="bench",
                    user_id=target.user_id,
                    redirect_uri=REDIRECT_URI,
                    redirect_uri_given=True,
                    scope=scope,
                    code_challenge=None,
                    nonce=None,
                    auth_time=now,
                    expires_at=now + 120,
                )
            )
            for _ in range(count)
        ]
    finally:
        await node.close()
    auth = ("bench", target.secret)
    async with httpx.AsyncClient(base_url=target.url, auth=auth) as client:
        tokens = []
        for code in issued:
            response = await client.post(
                "/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT_URI,
                },
            )
            response.raise_for_status()
            tokens.append(response.json()["refresh_token"])
        return tokens


def drive(
    target: Target,
    scratch: Path,
    connections: int,
    duration: float,
    grant: str,
    scope: str,
) -> dict[str, float]:
    """One wrk run of ``grant`` against ``target``."""
    basic = base64.b64encode(f"bench:{target.secret}".encode()).decode()
    script = scratch / f"{grant}.lua"
    if grant == "refresh_token":
        tokens = asyncio.run(first_tokens(target, 2 * connections, scope))
        for thread in range(THREADS):
            part = tokens[thread::THREADS]
            (scratch / f"tokens.{thread}").write_text("\n".join(part) + "\n")
        script.write_text(ROTATE_LUA.replace("BASIC", basic))
    else:
        script.write_text(LUA.format(basic=basic))
    return run_wrk(
        target.url + "/oauth2/token",
        script,
        connections,
        int(duration),
        threads=THREADS,
        # Writes queue behind SQLite's one writer: slow answers, not errors.
        timeout=10,
        args=[str(scratch / "tokens")],
    )


@contextlib.contextmanager
def serving(target: Target) -> Iterator[None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tessera", "serve"],
        env=target.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {target.name} server did not start")
            try:
                httpx.get(target.url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


async def admin(postgres: str, statement: str) -> None:
    connection = await asyncpg.connect(f"{postgres}/postgres", timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--openid", action="store_true", help="ID token each time")
    parser.add_argument("--postgres", default=POSTGRES)
    args = parser.parse_args()
    scope = "openid read" if args.openid else "read"

    database = f"tessera_bench_refresh_{secrets.token_hex(4)}"
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{database}"'))
    best: dict[str, dict[int, dict[str, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            targets = [
                target("sqlite", root / "sqlite", ""),
                target(
                    "postgresql", root / "postgresql", f"{args.postgres}/{database}"
                ),
            ]
            for each in targets:
                asyncio.run(register(each))
            with serving(targets[0]), serving(targets[1]):
                best = run_rounds(
                    targets, root, args.connections, args.rounds, args.duration, scope
                )
    finally:
        asyncio.run(admin(args.postgres, f'DROP DATABASE "{database}" WITH (FORCE)'))
    report(best, args, scope)


def run_rounds(
    targets: list[Target],
    scratch: Path,
    connections: list[int],
    rounds: int,
    duration: float,
    scope: str,
) -> dict[str, dict[int, dict[str, float]]]:
    best: dict[str, dict[int, dict[str, float]]] = {}
    for each in targets:  # warm-up
        drive(each, scratch, 4, 1, "refresh_token", scope)
    for _ in range(rounds):
        for count in connections:
            for each in targets:
                for grant in ("refresh_token", "client_credentials"):
                    result = drive(each, scratch, count, duration, grant, scope)
                    key = each.name if grant == "refresh_token" else each.name + "/cc"
                    kept = best.setdefault(key, {}).get(count)
                    if kept is None or result["rps"] > kept["rps"]:
                        best[key][count] = result
    return best


def report(best: dict[str, dict[int, dict[str, float]]], args: Any, scope: str) -> None:
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, scope {scope!r}, "
        f"best of {args.rounds} rounds of {args.duration} s"
    )
    print(
        f"{'backend':>10} {'conns':>6} {'rotations/s':>11} {'p50/p99 ms':>15} "
        f"{'client_credentials rps':>22} {'ratio':>6}"
    )
    for name in ("sqlite", "postgresql"):
        for count in args.connections:
            rotation, reference = best[name][count], best[name + "/cc"][count]
            print(
                f"{name:>10} {count:>6} {rotation['rps']:>11.0f} "
                f"{rotation['p50_ms']:>7.2f}/{rotation['p99_ms']:<7.2f} "
                f"{reference['rps']:>22.0f} "
                f"{rotation['rps'] / reference['rps']:>6.1%}"
            )
    print(json.dumps({"scope": scope, **best}))


if __name__ == "__main__":
    main()
