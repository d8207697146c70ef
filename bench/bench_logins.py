"""Logins per second with argon2id, on SQLite and PostgreSQL, in one run.

Run:  .venv/bin/python bench/bench_logins.py [--duration 5] [--rounds 3]
      [--concurrency 2] [--users 50] [--postgres postgres@127.0.0.1:5432]

About two minutes with the defaults. In process, no HTTP: ``authenticate_user``
against a real UserRepository, with the default argon2id parameters of
tessera.core.users, a LoginThrottle over the in-process limiter, and an
audit that only counts. ``--concurrency`` tasks log in at once; each
verification runs in a worker thread (argon2 releases the GIL), as on the
server. PostgreSQL is a fresh database on the given server, created for
the run and dropped at its end, also on error or Ctrl-C.

Three cases, interleaved over the rounds so that a slow spell of the machine
hits them alike, the best round of each kept:

    success         the right password
    wrong password  an existing user, a wrong password
    unknown user    a username that does not exist (the dummy hash)

Every attempt comes from its own source address and the throttle's
thresholds are out of reach: its slowdown is deliberate waiting, not cost,
and its rate limit would refuse a benchmark. The ceiling is what the
verifications allow in theory, concurrency / one verification's time (never
more than the cores); "verifications alone" is what the same tasks reach
doing nothing but verify, the practical ceiling each case is compared with.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from argon2 import PasswordHasher, Type
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.limits import Lockout
from tessera.core.users import (
    MEMORY_COST,
    PARALLELISM,
    TIME_COST,
    LoginError,
    LoginThrottle,
    Passwords,
    authenticate_user,
    new_user,
)
from tessera.server.limits_local import LocalLimiter
from tessera.store import database
from tessera.store.users import UserRepository

PASSWORD = "correct horse battery staple"
CASES = ("success", "wrong password", "unknown user")
UNREACHABLE = 10**9


class CountingAudit:
    def __init__(self) -> None:
        self.count = 0

    def emit(self, event: str, **fields: Any) -> None:
        self.count += 1


def single_verify_ms(samples: int = 30) -> dict[str, float]:
    """One verification, in this thread, with nothing else running."""
    hasher = PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_COST,
        parallelism=PARALLELISM,
        type=Type.ID,
    )
    hashed = hasher.hash(PASSWORD)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        hasher.verify(hashed, PASSWORD)
        times.append((time.perf_counter() - start) * 1000)
    return {"best_ms": min(times), "median_ms": statistics.median(times)}


@asynccontextmanager
async def postgres_database(server: str) -> AsyncIterator[str]:
    name = f"tessera_bench_logins_{os.getpid()}_{secrets.token_hex(4)}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(f"postgresql://{server}/test", timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://{server}/{name}"
    finally:
        await admin(f'DROP DATABASE "{name}" WITH (FORCE)')


async def prepare(
    url: str, users: int, password_hash: str
) -> tuple[Any, async_sessionmaker[AsyncSession]]:
    engine = database.create_engine(url)
    await database.migrate(engine)
    sessions = database.sessions(engine)
    repository = UserRepository(sessions)
    # One hash for every user: a verification costs the same whatever the salt.
    for n in range(users):
        await repository.create(new_user(f"user{n}"), password_hash)
    return engine, sessions


async def drive(
    sessions: async_sessionmaker[AsyncSession],
    passwords: Passwords,
    case: str,
    users: int,
    concurrency: int,
    duration: float,
) -> dict[str, float]:
    """Log in from ``concurrency`` tasks for ``duration`` seconds."""
    repository = UserRepository(sessions)
    audit = CountingAudit()
    throttle = LoginThrottle(
        LocalLimiter(),
        Lockout(900, UNREACHABLE, UNREACHABLE, 1),
        audit,
    )
    attempt = itertools.count()
    outcomes = {"ok": 0, "refused": 0}
    deadline = time.perf_counter() + duration

    async def one_task() -> None:
        while time.perf_counter() < deadline:
            n = next(attempt)
            username = f"user{n % users}"
            password = PASSWORD
            if case == "unknown user":
                username = f"nobody{n % users}"
            elif case == "wrong password":
                password = PASSWORD + "!"
            try:
                await authenticate_user(
                    username,
                    password,
                    users=repository,
                    passwords=passwords,
                    throttle=throttle,
                    audit=audit,
                    source=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                    now=time.time(),
                )
                outcomes["ok"] += 1
            except LoginError:
                outcomes["refused"] += 1

    start = time.perf_counter()
    await asyncio.gather(*(one_task() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    expected = "ok" if case == "success" else "refused"
    if outcomes[expected] != sum(outcomes.values()):
        raise RuntimeError(f"{case}: unexpected outcomes {outcomes}")
    logins = sum(outcomes.values())
    return {"logins": logins, "per_second": logins / elapsed}


async def verify_only(
    passwords: Passwords, password_hash: str, concurrency: int, duration: float
) -> dict[str, float]:
    """The verifications of a login and nothing else, from as many tasks."""
    count = 0
    deadline = time.perf_counter() + duration

    async def one_task() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await passwords.verify(password_hash, PASSWORD)
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(one_task() for _ in range(concurrency)))
    return {"logins": count, "per_second": count / (time.perf_counter() - start)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    passwords = Passwords(max_concurrent=args.concurrency)
    password_hash = await passwords.hash(PASSWORD)
    best: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with postgres_database(args.postgres) as postgres_url:
            urls = {
                "sqlite": f"sqlite+aiosqlite:///{Path(tmp) / 'tessera.db'}",
                "postgresql": postgres_url,
            }
            stores = {
                name: await prepare(url, args.users, password_hash)
                for name, url in urls.items()
            }
            try:
                for _, sessions in stores.values():  # warm-up
                    await drive(sessions, passwords, "success", args.users, 2, 0.5)
                for _ in range(args.rounds):
                    result = await verify_only(
                        passwords, password_hash, args.concurrency, args.duration
                    )
                    kept = best.setdefault("verify only", {}).get("")
                    if kept is None or result["per_second"] > kept["per_second"]:
                        best["verify only"][""] = result
                    for case in CASES:
                        for name, (_, sessions) in stores.items():
                            result = await drive(
                                sessions,
                                passwords,
                                case,
                                args.users,
                                args.concurrency,
                                args.duration,
                            )
                            kept = best.setdefault(name, {}).get(case)
                            if (
                                kept is None
                                or result["per_second"] > kept["per_second"]
                            ):
                                best[name][case] = result
            finally:
                for engine, _ in stores.values():
                    await engine.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--postgres", default="postgres@127.0.0.1:5432")
    args = parser.parse_args()

    single = single_verify_ms()
    try:
        best = asyncio.run(run(args))
    except OSError as error:
        sys.exit(f"PostgreSQL at {args.postgres} is unreachable: {error}")
    ceiling = min(args.concurrency, os.cpu_count() or 1) / single["best_ms"] * 1000

    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}; "
        f"argon2id m={MEMORY_COST} KiB t={TIME_COST} p={PARALLELISM}; "
        f"concurrency {args.concurrency}, best of {args.rounds} rounds "
        f"of {args.duration:g} s"
    )
    print(
        f"one verification: {single['best_ms']:.1f} ms best, "
        f"{single['median_ms']:.1f} ms median; ceiling {ceiling:.0f} logins/s"
    )
    alone = best.pop("verify only")[""]["per_second"]
    print(
        f"verifications alone, {args.concurrency} tasks: {alone:.1f}/s "
        f"({alone / ceiling:.0%} of the ceiling)"
    )
    print(f"{'case':<16} {'sqlite /s':>10} {'postgresql /s':>14} {'of alone':>13}")
    for case in CASES:
        sqlite = best["sqlite"][case]["per_second"]
        postgres = best["postgresql"][case]["per_second"]
        print(
            f"{case:<16} {sqlite:>10.1f} {postgres:>14.1f} "
            f"{sqlite / alone:>6.0%} {postgres / alone:>6.0%}"
        )
    print(
        json.dumps(
            {
                "argon2id": {
                    "memory_kib": MEMORY_COST,
                    "time_cost": TIME_COST,
                    "parallelism": PARALLELISM,
                },
                "single_verify": single,
                "ceiling": ceiling,
                "verify_only_per_second": alone,
                "concurrency": args.concurrency,
                **best,
            }
        )
    )


if __name__ == "__main__":
    main()
