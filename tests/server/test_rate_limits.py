"""Token-endpoint rate limits and failed-authentication lockout, on real
``tessera serve`` processes: alone, two sharing Redis and PostgreSQL, and
one whose Redis is down. Then the Redis limiter itself, against Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
import redis.asyncio

from tessera.core.limits import RateCheck
from tessera.keys import master
from tessera.server.limits_local import LocalLimiter
from tessera.server.limits_redis import RedisLimiter
from tests.server.helpers import (
    AUTH_FAILED,
    assert_error,
    assert_no_store,
    basic,
    unique,
)
from tests.support import RunningServer, free_port, running, start_server

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES = "postgres@127.0.0.1:5432"
TOO_MANY = "Too many requests; try again later."
GRANT = {"grant_type": "client_credentials"}
WRONG = "tsec_" + "x" * 49
NO_RATE_LIMITS = {
    "TESSERA_RATE_LIMIT_PER_CLIENT": "0",
    "TESSERA_RATE_LIMIT_PER_SOURCE": "0",
}
NOW = time.time()

# A server of the test's own, stopped however the test ends.
serving = contextlib.contextmanager(running)


def token(
    http: httpx.Client, client_id: str, secret: str, forwarded_for: str | None = None
) -> httpx.Response:
    headers = {"Authorization": basic(client_id, secret)}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return http.post("/oauth2/token", data=GRANT, headers=headers)


def introspect(http: httpx.Client, client_id: str, secret: str) -> httpx.Response:
    headers = {"Authorization": basic(client_id, secret)}
    return http.post("/oauth2/introspect", data={"token": "-"}, headers=headers)


def assert_too_many(response: httpx.Response, retry_after: str) -> None:
    assert_error(response, 429, "temporarily_unavailable", TOO_MANY)
    assert response.headers["retry-after"] == retry_after
    assert "www-authenticate" not in response.headers


def assert_invalid_client(response: httpx.Response) -> None:
    assert_error(response, 401, "invalid_client", AUTH_FAILED)


def events(
    server: RunningServer, name: str, client_id: str, count: int = 1
) -> list[dict[str, Any]]:
    """The server's audit events ``name`` for the client, once ``count`` of
    them are written (the audit writer runs off the request path)."""
    deadline = time.monotonic() + 5
    while True:
        found = [
            event
            for event in map(json.loads, _json_lines(server))
            if event["event"] == name and event.get("client_id") == client_id
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _json_lines(server: RunningServer) -> list[str]:
    return [line for line in server.audit_lines() if line.startswith("{")]


def address() -> str:
    """A source address no other test uses (TEST-NET and benchmark ranges)."""
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


# Per client and per source, on one node.


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """1 request/s with a burst of 3, per client id and per source address;
    X-Forwarded-For believed from loopback. Tests send a source address of
    their own, so they do not share the per-source allowance."""
    yield from running(
        tmp_path_factory.mktemp("limited"),
        TESSERA_RATE_LIMIT_PER_CLIENT="1",
        TESSERA_RATE_LIMIT_PER_CLIENT_BURST="3",
        TESSERA_RATE_LIMIT_PER_SOURCE="1",
        TESSERA_RATE_LIMIT_PER_SOURCE_BURST="3",
        TESSERA_TRUSTED_PROXIES='["127.0.0.1"]',
    )


def test_past_the_client_burst_is_429_with_retry_after(
    limited: RunningServer,
) -> None:
    client_id = unique("burst")
    secret = limited.create_client(client_id)
    with httpx.Client(base_url=limited.base_url) as http:
        # A fresh source address per request: only the client limit applies.
        allowed = [token(http, client_id, secret, address()) for _ in range(3)]
        refused = token(http, client_id, secret, address())
        other = unique("burst-other")
        other_secret = limited.create_client(other)
        unaffected = token(http, other, other_secret, address())

    for response in allowed:
        assert response.status_code == 200, response.text
        assert_no_store(response)
    # The 4th within a second of the first: one interval (1 s) to wait.
    assert_too_many(refused, "1")
    assert refused.json() == {
        "error": "temporarily_unavailable",
        "error_description": TOO_MANY,
    }
    assert unaffected.status_code == 200
    [denied] = events(limited, "token.denied", client_id)
    assert {key: value for key, value in denied.items() if key != "ts"} == {
        "event": "token.denied",
        "client_id": client_id,
        "error": "temporarily_unavailable",
        "reason": "rate limited",
        "authentication_failed": False,
    }


def test_unknown_ids_are_rate_limited_alike(limited: RunningServer) -> None:
    known = unique("known")
    secret = limited.create_client(known)
    ghost = unique("ghost")
    with httpx.Client(base_url=limited.base_url) as http:
        for _ in range(3):
            assert token(http, known, WRONG, address()).status_code == 401
            assert_invalid_client(token(http, ghost, WRONG, address()))
        known_refused = token(http, known, secret, address())
        ghost_refused = token(http, ghost, WRONG, address())

    assert_too_many(known_refused, "1")
    assert_too_many(ghost_refused, "1")
    assert known_refused.content == ghost_refused.content


def test_past_the_source_burst_is_429_whatever_the_client(
    limited: RunningServer,
) -> None:
    ids = [unique("source") for _ in range(4)]
    source, elsewhere = address(), address()
    with httpx.Client(base_url=limited.base_url) as http:
        allowed = [token(http, client_id, WRONG, source) for client_id in ids[:3]]
        refused = token(http, ids[3], WRONG, source)
        # Entries left of the proxy's are the client's own say: ignored.
        spoofed = token(http, ids[3], WRONG, f"{elsewhere}, {source}")
        other_source = token(http, ids[3], WRONG, elsewhere)

    for response in allowed:
        assert_invalid_client(response)
    assert_too_many(refused, "1")
    assert_too_many(spoofed, "1")
    assert_invalid_client(other_source)


def test_an_untrusted_peer_cannot_pick_its_source(tmp_path: Path) -> None:
    env = {
        "TESSERA_RATE_LIMIT_PER_CLIENT": "0",
        "TESSERA_RATE_LIMIT_PER_SOURCE": "1",
        "TESSERA_RATE_LIMIT_PER_SOURCE_BURST": "2",
    }
    with serving(tmp_path / "tessera", **env) as server:
        with httpx.Client(base_url=server.base_url) as http:
            # No trusted proxies: a new X-Forwarded-For each time changes nothing.
            responses = [token(http, "anyone", WRONG, address()) for _ in range(3)]
        assert [response.status_code for response in responses] == [401, 401, 429]
        assert_too_many(responses[2], "1")


# Slowdown and lockout.


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Slow after 1 failure, locked for 2 s at the 3rd; no rate limits."""
    yield from running(
        tmp_path_factory.mktemp("guarded"),
        TESSERA_AUTH_SLOWDOWN_AFTER="1",
        TESSERA_AUTH_LOCKOUT_AFTER="3",
        TESSERA_AUTH_LOCKOUT_SECONDS="2",
        **NO_RATE_LIMITS,
    )


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_failures_slow_down_then_lock_out_even_the_right_secret(
    guarded: RunningServer,
) -> None:
    client_id = unique("locked")
    secret = guarded.create_client(client_id)
    with httpx.Client(base_url=guarded.base_url) as http:
        first, first_took = timed(lambda: token(http, client_id, WRONG))
        second, second_took = timed(lambda: token(http, client_id, WRONG))
        third, third_took = timed(lambda: token(http, client_id, WRONG))
        # The lock began as the third failure was counted, 0.5 s ago.
        locked = token(http, client_id, secret)
        locked_introspection = introspect(http, client_id, secret)
        time.sleep(2.0 - 0.5 + 0.2)
        unlocked = token(http, client_id, secret)

    for response in (first, second, third):
        assert_invalid_client(response)
    assert first_took < 0.25
    # Upper bounds with room for a busy machine: the cap is 2 s.
    assert 0.25 <= second_took < 0.45 + 0.3
    assert 0.5 <= third_took < 0.95 + 0.3
    assert_too_many(locked, "2")
    assert_too_many(locked_introspection, "2")
    assert unlocked.status_code == 200, unlocked.text

    [lock] = events(guarded, "client.locked_out", client_id)
    assert set(lock) == {"ts", "event", "client_id", "failures", "until"}
    assert lock["failures"] == 3
    assert lock["ts"] < lock["until"] <= lock["ts"] + 2
    metrics = httpx.get(guarded.url("/metrics")).text
    assert "tessera_client_lockouts_total 1.0" in metrics.splitlines()
    denied = events(guarded, "token.denied", client_id, 4)
    assert [(event["error"], event["reason"]) for event in denied] == [
        ("invalid_client", "wrong secret"),
        ("invalid_client", "wrong secret"),
        ("invalid_client", "wrong secret"),
        ("temporarily_unavailable", "locked out"),
    ]
    assert denied[3]["authentication_failed"] is False


def test_locked_known_and_unknown_ids_get_the_same_answer(
    guarded: RunningServer,
) -> None:
    known = unique("locked-known")
    secret = guarded.create_client(known)
    ghost = unique("locked-ghost")
    with httpx.Client(base_url=guarded.base_url) as http:
        for _ in range(3):
            assert_invalid_client(token(http, known, WRONG))
            assert_invalid_client(token(http, ghost, WRONG))
        known_locked = token(http, known, secret)
        ghost_locked = token(http, ghost, WRONG)

    assert known_locked.status_code == ghost_locked.status_code == 429
    assert known_locked.content == ghost_locked.content
    assert known_locked.headers.keys() == ghost_locked.headers.keys()
    assert events(guarded, "client.locked_out", ghost)[0]["failures"] == 3


def test_introspection_and_revocation_failures_count_too(
    guarded: RunningServer,
) -> None:
    client_id = unique("locked-elsewhere")
    secret = guarded.create_client(client_id)
    with httpx.Client(base_url=guarded.base_url) as http:
        headers = {"Authorization": basic(client_id, WRONG)}
        failed = [
            introspect(http, client_id, WRONG),
            http.post("/oauth2/revoke", data={"token": "-"}, headers=headers),
            introspect(http, client_id, WRONG),
        ]
        locked = token(http, client_id, secret)

    for response in failed:
        assert_error(response, 401, "invalid_client", AUTH_FAILED)
    assert_too_many(locked, "2")
    assert events(guarded, "client.locked_out", client_id)[0]["failures"] == 3


def test_a_success_clears_the_failures(guarded: RunningServer) -> None:
    client_id = unique("cleared")
    secret = guarded.create_client(client_id)
    with httpx.Client(base_url=guarded.base_url) as http:
        outcomes = []
        for _ in range(2):
            outcomes.append(token(http, client_id, WRONG).status_code)
            outcomes.append(token(http, client_id, WRONG).status_code)
            outcomes.append(token(http, client_id, secret).status_code)
    assert outcomes == [401, 401, 200, 401, 401, 200]


# Two nodes sharing Redis and PostgreSQL.


def _redis_reachable() -> None:
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as client:
            client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {error}")


async def _postgres(statement: str) -> None:
    connection = await asyncpg.connect(f"postgresql://{POSTGRES}/test", timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    name = f"tessera_limits_{secrets.token_hex(6)}"
    try:
        asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    except OSError as error:
        pytest.skip(f"PostgreSQL at {POSTGRES} is unreachable: {error}")
    yield f"postgresql+asyncpg://{POSTGRES}/{name}"
    asyncio.run(_postgres(f'DROP DATABASE "{name}" WITH (FORCE)'))


class Cluster:
    """Two nodes on one database and one Redis; the env to reach the store
    from this process; and the client ids whose Redis keys to delete."""

    def __init__(self, a: RunningServer, b: RunningServer, store_env: dict[str, str]):
        self.a, self.b = a, b
        self.store_env = store_env
        self.client_ids: list[str] = []

    def create_client(self, prefix: str) -> tuple[str, str]:
        client_id = unique(prefix)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.store_env.items():
                patch.setenv(name, value)
            secret = self.a.create_client(client_id)
        self.b.secrets[client_id] = secret
        self.b.wait_until_known(client_id, secret, disabled=False)
        self.client_ids.append(client_id)
        return client_id, secret


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, shared_database: str
) -> Iterator[Cluster]:
    """Per client: 1 request/s, burst 4. Locked out at the 3rd failure, for a
    minute. The per-source limit is off: its key, for 127.0.0.1, would be
    shared with whatever else uses this Redis."""
    _redis_reachable()
    store_env = {
        "TESSERA_DATABASE_URL": shared_database,
        "TESSERA_MASTER_KEY": master.generate(),
    }
    env = {
        **store_env,
        "TESSERA_REDIS_URL": REDIS_URL,
        "TESSERA_RATE_LIMIT_PER_CLIENT": "1",
        "TESSERA_RATE_LIMIT_PER_CLIENT_BURST": "4",
        "TESSERA_RATE_LIMIT_PER_SOURCE": "0",
        "TESSERA_AUTH_SLOWDOWN_AFTER": "10",
        "TESSERA_AUTH_LOCKOUT_AFTER": "3",
        "TESSERA_AUTH_LOCKOUT_SECONDS": "60",
    }
    root = tmp_path_factory.mktemp("cluster")
    a = start_server(root / "a", **env)
    try:
        b = start_server(root / "b", **env)
        try:
            cluster = Cluster(a, b, store_env)
            yield cluster
        finally:
            b.stop()
    finally:
        a.stop()
    with redis.Redis.from_url(REDIS_URL) as client:
        for client_id in cluster.client_ids:
            client.delete(
                f"tessera:rate:client:{client_id}",
                f"tessera:fail:{client_id}",
                f"tessera:lock:{client_id}",
            )


def test_the_burst_is_shared_across_nodes(cluster: Cluster) -> None:
    client_id, secret = cluster.create_client("shared-burst")
    with (
        httpx.Client(base_url=cluster.a.base_url) as a,
        httpx.Client(base_url=cluster.b.base_url) as b,
    ):
        allowed = [token(node, client_id, secret) for node in (a, b, a, b)]
        refused_a = token(a, client_id, secret)
        refused_b = token(b, client_id, secret)

    # Counted per node, each would have allowed all four and two more.
    assert [response.status_code for response in allowed] == [200] * 4
    assert_too_many(refused_a, "1")
    assert_too_many(refused_b, "1")
    for node in (cluster.a, cluster.b):
        assert not [line for line in node.audit_lines() if "Redis" in line]


def test_a_lockout_on_one_node_holds_on_the_other(cluster: Cluster) -> None:
    client_id, secret = cluster.create_client("shared-lock")
    with (
        httpx.Client(base_url=cluster.a.base_url) as a,
        httpx.Client(base_url=cluster.b.base_url) as b,
    ):
        failed = [token(a, client_id, WRONG) for _ in range(3)]
        time.sleep(1.1)  # past the rate limit's interval: only the lock refuses
        locked_token = token(b, client_id, secret)
        locked_introspection = introspect(b, client_id, secret)

    for response in failed:
        assert_invalid_client(response)
    assert_too_many(locked_token, "59")
    assert_too_many(locked_introspection, "59")
    assert events(cluster.a, "client.locked_out", client_id)[0]["failures"] == 3
    [denied] = events(cluster.b, "token.denied", client_id)
    assert denied["reason"] == "locked out"


# Redis down.


def test_with_redis_down_tokens_are_issued_and_limited_per_node(
    tmp_path: Path,
) -> None:
    env = {
        "TESSERA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "TESSERA_RATE_LIMIT_PER_CLIENT": "1",
        "TESSERA_RATE_LIMIT_PER_CLIENT_BURST": "2",
    }
    with serving(tmp_path / "tessera", **env) as server:
        client_id = unique("no-redis")
        secret = server.create_client(client_id)
        with httpx.Client(base_url=server.base_url) as http:
            responses = [token(http, client_id, secret) for _ in range(3)]
        assert [response.status_code for response in responses] == [200, 200, 429]
        assert_too_many(responses[2], "1")
        warnings = [line for line in server.audit_lines() if "Redis" in line]
        assert warnings == [
            "Redis unavailable (ConnectionError); "
            "rate limits and lockouts count per node"
        ]


# The Redis limiter itself.


@pytest.fixture
async def redis_limiter() -> AsyncIterator[RedisLimiter]:
    """A limiter on the real Redis, under a prefix of the test's own."""
    _redis_reachable()
    prefix = f"tessera:test-{secrets.token_hex(6)}:"
    limiter = RedisLimiter(REDIS_URL, LocalLimiter(), prefix=prefix)
    yield limiter
    await limiter.close()
    async with redis.asyncio.Redis.from_url(REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)


async def test_redis_gcra_answers_like_the_local_one(
    redis_limiter: RedisLimiter,
) -> None:
    local = LocalLimiter()
    schedule = [0, 0, 0, 0, 0.25, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5, 1.5, 10]
    for offset in schedule:
        expected = await local.hit("client:x", 2, 3, NOW + offset)
        assert await redis_limiter.hit("client:x", 2, 3, NOW + offset) == (
            pytest.approx(expected, abs=1e-6)
        )


ADMIT_CHECKS = (RateCheck("source:192.0.2.9", 4, 2), RateCheck("client:x", 2, 3))


async def test_redis_admission_answers_like_the_local_one(
    redis_limiter: RedisLimiter,
) -> None:
    local = LocalLimiter()
    for limiter in (local, redis_limiter):
        await limiter.record_failure("x", NOW, 300)
        await limiter.lock("locked", NOW + 30, NOW)
    schedule = [0, 0, 0, 0, 0.25, 0.5, 0.5, 1.5, 1.5, 1.5, 10]
    for offset in schedule:
        for client_id in ("x", "locked", "clean"):
            expected = await local.admit(ADMIT_CHECKS, client_id, NOW + offset)
            got = await redis_limiter.admit(ADMIT_CHECKS, client_id, NOW + offset)
            assert got.wait == pytest.approx(expected.wait, abs=1e-6)
            assert (got.locked_until, got.has_failures) == (
                expected.locked_until,
                expected.has_failures,
            )


async def test_admission_stops_at_the_first_refusal() -> None:
    local = LocalLimiter()
    checks = (RateCheck("source:a", 1, 1), RateCheck("client:b", 1, 1))

    first = await local.admit(checks, "b", NOW)
    refused = await local.admit(checks, "b", NOW)

    assert (first.wait, first.locked_until, first.has_failures) == (0.0, None, False)
    assert refused.wait == pytest.approx(1.0)
    # The refused source check left the client's budget untouched.
    assert await local.hit("client:b", 1, 1, NOW + 1) == 0.0


async def test_every_redis_key_expires(redis_limiter: RedisLimiter) -> None:
    now = time.time()
    await redis_limiter.hit("source:192.0.2.1", 2, 3, now)
    assert await redis_limiter.record_failure("app", now, 300) == 1
    assert await redis_limiter.record_failure("app", now, 300) == 2
    assert await redis_limiter.record_failure("other", now, 300) == 1
    await redis_limiter.lock("other", now + 60, now)
    prefix = redis_limiter._prefix
    async with redis.asyncio.Redis.from_url(REDIS_URL) as client:
        keys = sorted([key async for key in client.scan_iter(match=prefix + "*")])
        ttls = {key.decode()[len(prefix) :]: await client.pttl(key) for key in keys}
    assert sorted(ttls) == ["fail:app", "lock:other", "rate:source:192.0.2.1"]
    assert 0 < ttls["rate:source:192.0.2.1"] <= 500
    assert 299_000 < ttls["fail:app"] <= 300_000
    assert 59_000 < ttls["lock:other"] <= 60_000


async def test_redis_counts_failures_and_locks(redis_limiter: RedisLimiter) -> None:
    now = time.time()
    for expected in (1, 2, 3):
        assert await redis_limiter.record_failure("app", now, 300) == expected
    await redis_limiter.clear_failures("app")
    assert await redis_limiter.record_failure("app", now, 300) == 1
    assert await redis_limiter.locked_until("app", now) is None
    await redis_limiter.lock("app", now + 60, now)
    assert await redis_limiter.locked_until("app", now + 1) == now + 60
    assert await redis_limiter.locked_until("app", now + 60) is None
    # The lock restarts the count.
    assert await redis_limiter.record_failure("app", now, 300) == 1


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unreachable_redis_falls_back_and_warns_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = Ticks()
    url = f"redis://127.0.0.1:{free_port()}/0"
    limiter = RedisLimiter(url, LocalLimiter(), monotonic=ticks)
    caplog.set_level(logging.WARNING, logger="tessera.server")
    try:
        waits = [await limiter.hit("k", 1, 2, NOW) for _ in range(3)]
        assert waits == [0.0, 0.0, 1.0]
        assert await limiter.record_failure("app", NOW, 300) == 1
        ticks.now += 30  # tries Redis again, fails again, but stays quiet
        assert await limiter.record_failure("app", NOW, 300) == 2
        assert len(caplog.records) == 1
        ticks.now += 31
        assert await limiter.locked_until("app", NOW) is None
        assert len(caplog.records) == 2
    finally:
        await limiter.close()
    assert caplog.records[0].getMessage() == (
        "Redis unavailable (ConnectionError); rate limits and lockouts count per node"
    )


async def test_a_silent_redis_times_out_into_the_fallback() -> None:
    with socket.socket() as silent:
        # Accepts connections (the backlog does) but never answers.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0", LocalLimiter())
        try:
            started = time.monotonic()
            assert await limiter.hit("k", 1, 1, NOW) == 0.0
            assert time.monotonic() - started < 1.0
        finally:
            await limiter.close()
