"""Cluster throughput: SQLite against PostgreSQL, one to three nodes, and a
slowed database.

Run:  .venv/bin/python bench/bench_cluster.py [--duration 10] [--rounds 3]
      [--connections 16] [--db-delay-ms 20] [--quick]

About four minutes with the defaults; --quick is 2 rounds of 3 s, about one.

Needs `wrk` and the PostgreSQL server at 127.0.0.1:5432 (user postgres,
trust). Creates a fresh database there, dropped at the end, and starts on
loopback ports:

    sqlite     one node on its own SQLite store
    pg1..pg3   three nodes sharing the PostgreSQL database
    slow       a fourth node on the same database, reached through a TCP
               proxy in this process that holds every chunk for
               --db-delay-ms in each direction, as a far-away database would

All nodes run with rate limits off and audit events written to /dev/null.
Each node is driven by its own wrk (one thread, --connections connections)
with its own client (bench-1 on pg1, slow and sqlite; bench-2 on pg2;
bench-3 on pg3); several nodes are driven at once and their rates summed.

Measured: token issuance (client_credentials) on every configuration, and
introspection of a valid token on pg1 and slow. Issuance reads nothing from
the database, introspection reads the revocation table once per request, so
only the latter should feel the delay. Rounds interleave the configurations
so that a slow spell of the machine hits them alike; the best round of each
is kept. Every process is stopped and the database dropped at the end, also
on error or Ctrl-C. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
from bench_token import LUA, free_port, run_wrk, serving

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.keys import master

SHARED_SERVER = "postgres@127.0.0.1:5432"
ISSUER = "https://tessera.bench.example"
AUDIENCE = "https://api.example.test"
CLIENTS = ("bench-1", "bench-2", "bench-3")

INTROSPECT_LUA = """
wrk.method = "POST"
wrk.body = "token={token}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic {basic}"
"""


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    endpoint: Literal["token", "introspect"]
    nodes: tuple[str, ...]
    # The case this one is compared with, for the ratio column.
    reference: str | None = None


CASES = (
    Case("sqlite", "SQLite", "token", ("sqlite",)),
    Case("pg1", "PostgreSQL", "token", ("pg1",), "sqlite"),
    Case("pg2", "PostgreSQL", "token", ("pg1", "pg2"), "pg1"),
    Case("pg3", "PostgreSQL", "token", ("pg1", "pg2", "pg3"), "pg1"),
    Case("pg1-slow", "PostgreSQL, slowed", "token", ("slow",), "pg1"),
    Case("introspect", "PostgreSQL", "introspect", ("pg1",)),
    Case(
        "introspect-slow", "PostgreSQL, slowed", "introspect", ("slow",), "introspect"
    ),
)


@dataclass(frozen=True)
class Node:
    name: str
    port: int
    client_id: str
    secret: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class SlowLink:
    """A TCP proxy on a loopback port that delivers every chunk ``delay``
    seconds after it arrived, in each direction. Chunks queue rather than
    wait in turn, so the link adds latency without capping throughput.

    Runs its own event loop in a thread, so that it keeps forwarding while
    the main thread waits on wrk."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowLink:
        self._thread.start()
        if not self._ready.wait(timeout=10) or not self.port:
            raise RuntimeError("the slow link did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        connections: set[asyncio.Task[Any]] = set()

        async def accept(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                await self._connect(reader, writer)
            finally:
                connections.discard(task)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    async def _connect(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        server_reader, server_writer = upstream
        await asyncio.gather(
            self._pipe(client_reader, server_writer),
            self._pipe(server_reader, client_writer),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
        except OSError:
            pass
        finally:
            # The end of the stream is delayed like the data before it.
            queue.put_nowait((loop.time() + self.delay, b""))
            with contextlib.suppress(OSError):
                await delivering
            writer.close()


async def admin(statement: str) -> None:
    connection = await asyncpg.connect(f"postgresql://{SHARED_SERVER}/test", timeout=5)
    try:
        await connection.execute(statement, timeout=30)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new database on the shared server, dropped on the way out."""
    name = f"tessera_bench_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except OSError as error:
        sys.exit(f"PostgreSQL at {SHARED_SERVER} is unreachable: {error}")
    try:
        yield name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def register_clients(settings: Settings) -> dict[str, str]:
    """Register the bench clients in a store; return their secrets."""

    async def go() -> dict[str, str]:
        async with operator(settings) as op:
            return {
                client_id: await op.register(
                    client_id, scopes=frozenset({"read"}), audiences=(AUDIENCE,)
                )
                for client_id in CLIENTS
            }

    return asyncio.run(go())


def node_env(port: int, data_dir: Path, database_url: str, key: str) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "TESSERA_DATA_DIR": str(data_dir),
        "TESSERA_PORT": str(port),
        "TESSERA_ISSUER": ISSUER,
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_MASTER_KEY": key,
        "TESSERA_AUDIT_LOG": os.devnull,
        "TESSERA_LOG_LEVEL": "warning",
        "TESSERA_RATE_LIMIT_PER_CLIENT": "0",
        "TESSERA_RATE_LIMIT_PER_SOURCE": "0",
    }


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


class Bench:
    """The running nodes, their wrk scripts, and the best result per case."""

    def __init__(self, work: Path, nodes: dict[str, Node]) -> None:
        self.work = work
        self.nodes = nodes
        self.best: dict[str, dict[str, float]] = {}
        for node in nodes.values():
            credentials = basic(node.client_id, node.secret)
            self.token_script(node).write_text(LUA.format(basic=credentials))

    def token_script(self, node: Node) -> Path:
        return self.work / f"token-{node.name}.lua"

    def introspect_script(self, node: Node) -> Path:
        """A script that introspects a fresh, valid token of the node's own
        client: fresh for each run, so that no run outlives its token."""
        auth = (node.client_id, node.secret)
        url = node.base_url
        token = httpx.post(
            f"{url}/oauth2/token", data={"grant_type": "client_credentials"}, auth=auth
        ).json()["access_token"]
        answer = httpx.post(
            f"{url}/oauth2/introspect", data={"token": token}, auth=auth
        )
        if answer.json().get("active") is not True:
            raise RuntimeError(f"introspection on {url} said {answer.text}")
        script = self.work / f"introspect-{node.name}.lua"
        script.write_text(INTROSPECT_LUA.format(token=token, basic=basic(*auth)))
        return script

    def run(self, case: Case, connections: int, duration: int) -> dict[str, float]:
        """Drive every node of the case at once, one wrk each; the rates are
        summed, the latencies are those of the slowest node."""
        jobs = []
        for name in case.nodes:
            node = self.nodes[name]
            if case.endpoint == "token":
                script = self.token_script(node)
            else:
                script = self.introspect_script(node)
            url = f"{node.base_url}/oauth2/{case.endpoint}"
            jobs.append((url, script, connections, duration))
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(lambda job: run_wrk(*job), jobs))
        return {
            "rps": sum(result["rps"] for result in results),
            "p50_ms": max(result["p50_ms"] for result in results),
            "p99_ms": max(result["p99_ms"] for result in results),
        }

    def measure(self, case: Case, connections: int, duration: int) -> None:
        result = self.run(case, connections, duration)
        kept = self.best.get(case.key)
        if kept is None or result["rps"] > kept["rps"]:
            self.best[case.key] = result


def report(best: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; best of {args.rounds} rounds of "
        f"{args.duration} s, {args.connections} connections per node, "
        f"slowed database +{args.db_delay_ms:g} ms each way"
    )
    labels = {case.key: case for case in CASES}
    print(
        f"{'endpoint':<11}{'database':<20}{'nodes':>5}{'req/s':>9}"
        f"{'p50/p99 ms':>17}  ratio"
    )
    for case in CASES:
        result = best[case.key]
        ratio = ""
        if case.reference:
            reference = labels[case.reference]
            share = result["rps"] / best[case.reference]["rps"]
            ratio = f"{share:.2f} x {reference.label}, {len(reference.nodes)} node"
        latency = f"{result['p50_ms']:.2f}/{result['p99_ms']:.2f}"
        print(
            f"{case.endpoint:<11}{case.label:<20}{len(case.nodes):>5}"
            f"{result['rps']:>9.0f}{latency:>17}  {ratio}"
        )
    print(
        json.dumps(
            {
                "bench": "cluster",
                "duration": args.duration,
                "rounds": args.rounds,
                "connections": args.connections,
                "db_delay_ms": args.db_delay_ms,
                "best": {
                    key: {name: round(value, 2) for name, value in result.items()}
                    for key, result in best.items()
                },
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--db-delay-ms", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="about one minute")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 3, 2
    if not shutil.which("wrk"):
        sys.exit("wrk is required: apt-get install wrk")
    # A plain `kill` then cleans up as Ctrl-C does: nodes stopped, database
    # dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.monotonic()
    key = master.generate()
    with (
        tempfile.TemporaryDirectory(prefix="tessera-cluster-") as tmp,
        fresh_database() as database,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        direct = f"postgresql://{SHARED_SERVER}/{database}"
        pg_secrets = register_clients(
            Settings(
                data_dir=work / "setup",
                database_url=direct,
                master_key=key,
                audit_log=os.devnull,
            )
        )
        sqlite_secrets = register_clients(
            Settings(data_dir=work / "sqlite", master_key=key, audit_log=os.devnull)
        )
        link = stack.enter_context(SlowLink(5432, args.db_delay_ms / 1000))
        slowed = f"postgresql://postgres@127.0.0.1:{link.port}/{database}"

        # Nodes start one after another: each waits for the previous to
        # answer, so none of them races another through start-up.
        command = [sys.executable, "-m", "tessera", "serve"]
        nodes: dict[str, Node] = {}
        for name, url, client_id in (
            ("sqlite", "", "bench-1"),
            ("pg1", direct, "bench-1"),
            ("pg2", direct, "bench-2"),
            ("pg3", direct, "bench-3"),
            ("slow", slowed, "bench-1"),
        ):
            port = free_port()
            env = node_env(port, work / name, url, key)
            stack.enter_context(serving(command, env, port))
            # Both stores hold the same client ids, with secrets of their own.
            secret = (sqlite_secrets if name == "sqlite" else pg_secrets)[client_id]
            nodes[name] = Node(name, port, client_id, secret)

        bench = Bench(work, nodes)
        for case in CASES:  # warm-up, and fail early on a refused request
            bench.run(case, args.connections, 2)
        for _ in range(args.rounds):
            for case in CASES:
                bench.measure(case, args.connections, args.duration)

    report(bench.best, args)
    print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
