"""Faults, for real: a database stopped under load, processes killed with
SIGKILL halfway through a change, and a cluster restarted.

The test that stops the database runs its own PostgreSQL (see
``tests/private_postgres.py``), so the shared one is never touched. Load is
one client thread on loopback, bounded in requests and time."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tessera.config import Settings
from tessera.keys import master
from tessera.node import open_node
from tessera.store.clients import ClientRepository
from tests.cluster.conftest import ISSUER, Cluster
from tests.cluster.test_cluster import (
    EIGHT_DAYS,
    introspect,
    kids,
    register,
    token,
)
from tests.private_postgres import PrivatePostgres
from tests.support import RunningServer, free_port, start_server, within


class Load:
    """Token requests in a loop on one thread until stopped: every answer's
    status is counted, and a request that gets no answer in 10 s is a
    failure of its own (``hung``)."""

    def __init__(self, node: RunningServer, client_id: str, secret: str) -> None:
        self.statuses: Counter[int] = Counter()
        self.hung = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(node, client_id, secret), daemon=True
        )

    def _run(self, node: RunningServer, client_id: str, secret: str) -> None:
        with httpx.Client(timeout=10) as http:
            deadline = time.monotonic() + 120
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = http.post(
                        node.url("/oauth2/token"),
                        data={"grant_type": "client_credentials"},
                        auth=(client_id, secret),
                    )
                    self.statuses[response.status_code] += 1
                except httpx.TimeoutException:
                    self.hung += 1
                time.sleep(0.01)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def cli(node: RunningServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tessera", *args],
        env=node.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_node_rides_out_a_stopped_database_and_recovers_by_itself(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    node = start_server(
        tmp_path / "node",
        TESSERA_DATABASE_URL=private_postgres.create_database("tessera"),
        TESSERA_MASTER_KEY=master.generate(),
        TESSERA_STORE_OUTAGE_GRACE="8",
        TESSERA_CHANGE_POLL_INTERVAL="0.2",
    )
    try:
        secret = register(node.settings, "steady")
        within(2.0, lambda: token(node, "steady", secret).status_code == 200)
        value = token(node, "steady", secret).json()["access_token"]

        with Load(node, "steady", secret) as load:
            time.sleep(0.5)
            private_postgres.stop("immediate")
            stopped_at = time.monotonic()

            # Cached clients are still served tokens.
            assert token(node, "steady", secret).status_code == 200
            # What must be persisted, or read, answers 503: never a guess.
            revoke = httpx.post(
                node.url("/oauth2/revoke"),
                data={"token": value},
                auth=("steady", secret),
                timeout=15,
            )
            assert revoke.status_code == 503
            assert revoke.json()["error"] == "temporarily_unavailable"
            assert revoke.headers["retry-after"] == "5"
            known = introspect(node, "steady", secret, value)
            assert known.status_code == 503
            assert known.json()["error"] == "temporarily_unavailable"
            # A token that is not valid is known to be so without the store.
            forged = introspect(node, "steady", secret, value[:-4] + "AAAA")
            assert (forged.status_code, forged.json()) == (200, {"active": False})
            assert httpx.get(node.url("/readyz")).status_code == 503
            assert httpx.get(node.url("/healthz")).status_code == 200
            # An operator's change fails loudly rather than half-happening.
            create = cli(node, "clients", "create", "late", "--scope", "read")
            _, error = create.communicate(timeout=60)
            assert create.returncode != 0
            assert error.strip()

            # Past the grace period the node stops issuing from memory.
            time.sleep(max(0.0, stopped_at + 8.5 - time.monotonic()))
            refused = token(node, "steady", secret)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"

            private_postgres.start()
            within(15.0, lambda: httpx.get(node.url("/readyz")).status_code == 200)
            within(5.0, lambda: token(node, "steady", secret).status_code == 200)

        revoke = httpx.post(
            node.url("/oauth2/revoke"), data={"token": value}, auth=("steady", secret)
        )
        assert revoke.status_code == 200
        assert introspect(node, "steady", secret, value).json() == {"active": False}
        # Under load the node answered every request, with 200 or 503 only.
        assert load.hung == 0
        assert set(load.statuses) == {200, 503}
        assert "Traceback" not in node.log_path.read_text()
    finally:
        node.stop()


def test_sigkill_halfway_through_rotations_and_updates_loses_nothing(
    cluster: Cluster,
) -> None:
    nodes = cluster.start(2)
    secret = register(nodes[0].settings, "kept", scopes=frozenset({"a", "b"}))
    within(1.0, lambda: token(nodes[1], "kept", secret).status_code == 200)
    rng = random.Random(7)

    for round_ in range(8):
        rotate = cli(nodes[0], "keys", "rotate")
        scope = ["a b c", "a b"][round_ % 2]
        update = cli(nodes[1], "clients", "update", "kept", "--scope", scope)
        time.sleep(rng.uniform(0.0, 1.2))
        for process in (rotate, update):
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=10)

    async def stored() -> tuple[list[str], frozenset[str]]:
        node = await open_node(nodes[0].settings, time.time)
        try:
            # Every key that exists unseals: none is half-written.
            ring = await node.keys.load()
            client = await ClientRepository(node.sessions).get("kept")
            assert client is not None
            return sorted(entry.key.kid for entry in ring.entries), client.scopes
        finally:
            await node.close()

    stored_kids, scopes = asyncio.run(stored())

    assert scopes in (frozenset({"a", "b"}), frozenset({"a", "b", "c"}))
    for node in nodes:
        within(1.0, lambda node=node: kids(node) == stored_kids)
        response = token(node, "kept", secret)
        assert response.status_code == 200
        assert set(response.json()["scope"].split()) == scopes


def test_nodes_killed_while_rotating_at_start_leave_one_whole_key(
    cluster: Cluster,
) -> None:
    settings = Settings(
        database_url=cluster.database_url,
        master_key=cluster.env["TESSERA_MASTER_KEY"],
        issuer=ISSUER,
    )

    async def old_key() -> None:
        node = await open_node(settings, lambda: time.time() - EIGHT_DAYS)
        try:
            await node.keys.ensure({"RS256"})
        finally:
            await node.close()

    asyncio.run(old_key())
    env = {**cluster.env, "TESSERA_DEFAULT_SIGNING_ALG": "RS256"}
    rng = random.Random(11)
    for _ in range(5):
        # A node's first job is the rotation that is due; kill it somewhere
        # in the middle of starting up and rotating (RSA keys take a while).
        process = subprocess.Popen(
            [sys.executable, "-m", "tessera", "serve"],
            env={**env, "TESSERA_PORT": str(free_port())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    (node,) = cluster.start(1, TESSERA_DEFAULT_SIGNING_ALG="RS256")

    async def stored_kids() -> list[str]:
        opened = await open_node(settings, time.time)
        try:
            ring = await opened.keys.load()
            return sorted(entry.key.kid for entry in ring.entries)
        finally:
            await opened.close()

    # The old key and exactly one rotated key, each whole, and published.
    stored = asyncio.run(stored_kids())
    assert len(stored) == 2
    within(1.0, lambda: kids(node) == stored)


def test_a_restarted_cluster_keeps_every_revocation(cluster: Cluster) -> None:
    first, second = cluster.start(2)
    secret = register(first.settings, "restarting")
    within(1.0, lambda: token(first, "restarting", secret).status_code == 200)
    value = token(first, "restarting", secret).json()["access_token"]
    revoked = httpx.post(
        second.url("/oauth2/revoke"), data={"token": value}, auth=("restarting", secret)
    )
    assert revoked.status_code == 200

    cluster.stop()
    cluster.nodes.clear()
    restarted = cluster.start(2)

    for node in restarted:
        answer = introspect(node, "restarting", secret, value)
        assert answer.json() == {"active": False}
    # The same client's new tokens are active: it is the token that is
    # revoked, not the client.
    fresh = token(restarted[0], "restarting", secret).json()["access_token"]
    assert introspect(restarted[1], "restarting", secret, fresh).json()["active"]
