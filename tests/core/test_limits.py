"""Rate limits (GCRA) and failed-authentication lockout: the policy in
tessera.core.limits over the in-process limiter, with the time given and a
sleep that only records."""

from __future__ import annotations

from typing import Any

import pytest

from tessera.core.client_auth import Credentials
from tessera.core.errors import InvalidClient, TooManyRequests
from tessera.core.limits import (
    Guard,
    Lockout,
    RateLimits,
    TrustedProxies,
    gcra,
    key_id,
)
from tessera.core.secrets import hash_secret
from tessera.server.limits_local import SWEEP_INTERVAL, LocalLimiter
from tests.core.clients import Directory, make_client

NOW = 1_700_000_000.0
PEPPER = b"pepper".ljust(32, b"\0")
SECRET = "tsec_right"
WRONG = "tsec_wrong"
NO_RATES = RateLimits(0, 1, 0, 1)
TOO_MANY = {
    "error": "temporarily_unavailable",
    "error_description": "Too many requests; try again later.",
}


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Setup:
    """A guard over a fresh local limiter, a directory holding the client
    ``app`` (secret SECRET), and what the guard emitted and slept."""

    def __init__(
        self,
        rates: RateLimits = NO_RATES,
        *,
        window: float = 300,
        slowdown_after: int = 5,
        lockout_after: int = 20,
        lockout_seconds: float = 60,
    ) -> None:
        self.limiter = LocalLimiter()
        self.audit = Events()
        self.sleeps = Sleeps()
        self.clients = Directory(
            make_client(client_id="app", secret_hash=hash_secret(PEPPER, SECRET))
        )
        lockout = Lockout(window, slowdown_after, lockout_after, lockout_seconds)
        self.guard = Guard(self.limiter, rates, lockout, self.audit, sleep=self.sleeps)

    async def login(self, client_id: str, secret: str, now: float) -> str:
        """The outcome of one authentication: "ok", "invalid_client", or
        "429 after N" with the Retry-After it would carry."""
        credentials = Credentials(client_id, secret, "client_secret_post")
        try:
            await self.guard.authenticate(credentials, self.clients, PEPPER, now)
        except InvalidClient:
            return "invalid_client"
        except TooManyRequests as error:
            return f"429 after {error.retry_after}"
        return "ok"


# GCRA.


async def test_the_burst_is_allowed_then_the_next_waits_one_interval() -> None:
    limiter = LocalLimiter()
    waits = [await limiter.hit("k", 2, 3, NOW) for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, 0.5]


async def test_the_wait_shrinks_as_time_passes_and_a_refusal_costs_nothing() -> None:
    limiter = LocalLimiter()
    for _ in range(3):
        await limiter.hit("k", 2, 3, NOW)
    assert await limiter.hit("k", 2, 3, NOW + 0.25) == 0.25
    assert await limiter.hit("k", 2, 3, NOW + 0.25) == 0.25
    # One interval on, exactly one more request conforms.
    assert await limiter.hit("k", 2, 3, NOW + 0.5) == 0.0
    assert await limiter.hit("k", 2, 3, NOW + 0.5) == 0.5


async def test_the_burst_refills_at_the_rate() -> None:
    limiter = LocalLimiter()
    for _ in range(3):
        await limiter.hit("k", 2, 3, NOW)
    # 1.5 s at 2/s is three requests' worth: a whole burst again, not more.
    waits = [await limiter.hit("k", 2, 3, NOW + 1.5) for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, 0.5]


async def test_keys_are_counted_apart() -> None:
    limiter = LocalLimiter()
    assert await limiter.hit("a", 1, 1, NOW) == 0.0
    assert await limiter.hit("a", 1, 1, NOW) == 1.0
    assert await limiter.hit("b", 1, 1, NOW) == 0.0


def test_gcra_is_one_number_per_key() -> None:
    assert gcra(None, NOW, 4, 2) == (NOW + 0.25, 0.0)
    assert gcra(NOW + 0.25, NOW, 4, 2) == (NOW + 0.5, 0.0)
    assert gcra(NOW + 0.5, NOW, 4, 2) == (NOW + 0.5, 0.25)
    # A theoretical arrival time in the past is the same as none.
    assert gcra(NOW - 100, NOW, 4, 2) == gcra(None, NOW, 4, 2)


# The guard's rate checks.


async def test_over_the_client_rate_is_429_temporarily_unavailable() -> None:
    setup = Setup(RateLimits(2, 3, 0, 1))
    for _ in range(3):
        await setup.guard.check_client_rate("anyone", NOW)
    with pytest.raises(TooManyRequests) as raised:
        await setup.guard.check_client_rate("anyone", NOW)
    error = raised.value
    assert (error.status, error.retry_after, error.detail) == (429, 1, "rate limited")
    assert error.to_dict() == TOO_MANY
    # Another id has its own allowance; the source limit is off.
    await setup.guard.check_client_rate("someone-else", NOW)
    await setup.guard.check_source_rate("192.0.2.1", NOW)


async def test_over_the_source_rate_is_429_with_the_wait_rounded_up() -> None:
    setup = Setup(RateLimits(0, 1, 0.4, 2))
    await setup.guard.check_source_rate("192.0.2.1", NOW)
    await setup.guard.check_source_rate("192.0.2.1", NOW)
    with pytest.raises(TooManyRequests) as raised:
        await setup.guard.check_source_rate("192.0.2.1", NOW + 0.1)
    # 2.5 s per request, 0.1 s of it gone: 2.4 s, sent as 3.
    assert raised.value.retry_after == 3
    await setup.guard.check_source_rate("192.0.2.2", NOW)


async def test_a_rate_of_zero_counts_nothing() -> None:
    setup = Setup(NO_RATES)
    for _ in range(100):
        await setup.guard.check_source_rate("192.0.2.1", NOW)
        await setup.guard.check_client_rate("app", NOW)
    assert len(setup.limiter) == 0


@pytest.mark.parametrize(
    ("wait", "retry_after"),
    [(0.0, 1), (0.001, 1), (1.0, 1), (1.001, 2), (59.5, 60)],
    ids=["zero", "a millisecond", "one second", "just over one", "fractional"],
)
def test_retry_after_is_whole_seconds_rounded_up(wait: float, retry_after: int) -> None:
    assert TooManyRequests(wait).retry_after == retry_after


def test_long_client_ids_are_counted_by_digest() -> None:
    assert key_id("app") == "app"
    assert key_id("x" * 128) == "x" * 128
    digest = key_id("x" * 129)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert key_id("x" * 129) == digest != key_id("x" * 130)


# Slowdown and lockout.


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 0.0), (5, 0.0), (6, 0.25), (7, 0.5), (8, 1.0), (9, 2.0), (10, 2.0)]
    + [(10_000, 2.0)],
)
def test_the_slowdown_doubles_after_the_threshold_up_to_two_seconds(
    failures: int, delay: float
) -> None:
    assert Lockout(300, 5, 20, 300).delay(failures) == delay


async def test_failures_past_the_threshold_are_answered_later() -> None:
    setup = Setup(slowdown_after=2, lockout_after=100)
    outcomes = [await setup.login("app", WRONG, NOW + n) for n in range(7)]
    assert outcomes == ["invalid_client"] * 7
    assert setup.sleeps.delays == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert setup.audit.events == []


async def test_lockout_refuses_even_the_right_secret_until_it_ends() -> None:
    setup = Setup(slowdown_after=10, lockout_after=3, lockout_seconds=60)
    for n in range(3):
        assert await setup.login("app", WRONG, NOW + n) == "invalid_client"
    assert setup.audit.events == [
        ("client.locked_out", {"client_id": "app", "failures": 3, "until": NOW + 62})
    ]
    lookups = len(setup.clients.lookups)

    assert await setup.login("app", SECRET, NOW + 2) == "429 after 60"
    assert await setup.login("app", SECRET, NOW + 31.5) == "429 after 31"
    assert await setup.login("app", WRONG, NOW + 61.5) == "429 after 1"
    # While locked, no secret is even checked, and nothing more is counted.
    assert len(setup.clients.lookups) == lookups
    assert len(setup.audit.events) == 1

    assert await setup.login("app", SECRET, NOW + 62) == "ok"
    assert setup.sleeps.delays == []


async def test_the_lock_reason_is_private_and_the_answer_the_same_for_all() -> None:
    setup = Setup(slowdown_after=10, lockout_after=2)
    for client_id in ("app", "ghost"):
        for _ in range(2):
            await setup.login(client_id, WRONG, NOW)
    errors = []
    for client_id, secret in (("app", SECRET), ("ghost", SECRET)):
        with pytest.raises(TooManyRequests) as raised:
            await setup.guard.authenticate(
                Credentials(client_id, secret, "client_secret_basic"),
                setup.clients,
                PEPPER,
                NOW + 1,
            )
        errors.append(raised.value)
    for error in errors:
        assert (error.status, error.retry_after) == (429, 59)
        assert error.detail == "locked out"
        assert error.to_dict() == TOO_MANY
    assert [event for event, _ in setup.audit.events] == ["client.locked_out"] * 2


async def test_a_success_clears_the_count() -> None:
    setup = Setup(slowdown_after=10, lockout_after=3)
    for _ in range(2):
        assert await setup.login("app", WRONG, NOW) == "invalid_client"
    assert await setup.login("app", SECRET, NOW) == "ok"
    for _ in range(2):
        assert await setup.login("app", WRONG, NOW) == "invalid_client"
    assert await setup.login("app", SECRET, NOW) == "ok"
    assert setup.audit.events == []


async def test_failures_count_within_a_window_from_the_first() -> None:
    setup = Setup(window=10, slowdown_after=10, lockout_after=3)
    await setup.login("app", WRONG, NOW)
    await setup.login("app", WRONG, NOW + 9)
    # The window opened at NOW and closed at NOW + 10: this one starts anew.
    await setup.login("app", WRONG, NOW + 10)
    await setup.login("app", WRONG, NOW + 11)
    assert await setup.login("app", SECRET, NOW + 12) == "ok"
    assert setup.audit.events == []


async def test_after_a_lock_the_count_starts_again() -> None:
    setup = Setup(slowdown_after=10, lockout_after=2, lockout_seconds=5)
    await setup.login("app", WRONG, NOW)
    await setup.login("app", WRONG, NOW)
    assert await setup.login("app", WRONG, NOW + 5) == "invalid_client"
    assert await setup.login("app", SECRET, NOW + 5) == "ok"


# Bounded memory.


async def test_past_the_cap_the_least_recently_used_keys_are_dropped() -> None:
    limiter = LocalLimiter(max_keys=3)
    assert await limiter.hit("a", 1, 1, NOW) == 0.0
    assert await limiter.hit("a", 1, 1, NOW) == 1.0
    for key in "bcd":
        await limiter.hit(key, 1, 1, NOW)
    # "a" was the least recently used: forgotten, so it has a burst again.
    assert await limiter.hit("a", 1, 1, NOW) == 0.0
    assert len(limiter) <= 3


async def test_expired_entries_are_swept_out() -> None:
    limiter = LocalLimiter()
    for n in range(50):
        await limiter.hit(f"source:{n}", 10, 5, NOW)
        await limiter.record_failure(f"client-{n}", NOW, 300)
    await limiter.lock("client-0", NOW + 30, NOW)
    assert len(limiter) == 50 + 49 + 1
    await limiter.hit("source:0", 10, 5, NOW + SWEEP_INTERVAL + 300)
    assert len(limiter) == 1


# Source addresses.

PROXIES = TrustedProxies(["10.0.0.0/8", "192.0.2.10"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "source"),
    [
        pytest.param("203.0.113.5", ["198.51.100.7"], "203.0.113.5", id="untrusted"),
        pytest.param("192.0.2.10", ["198.51.100.7"], "198.51.100.7", id="proxy"),
        pytest.param("10.1.2.3", ["198.51.100.7"], "198.51.100.7", id="proxy-cidr"),
        pytest.param(
            "10.1.2.3",
            ["198.51.100.7, 10.9.9.9"],
            "198.51.100.7",
            id="through-two-proxies",
        ),
        pytest.param(
            "10.1.2.3",
            ["1.1.1.1, 198.51.100.7"],
            "198.51.100.7",
            id="spoofed-left-entry-ignored",
        ),
        pytest.param(
            "10.1.2.3",
            ["1.1.1.1", "198.51.100.7"],
            "198.51.100.7",
            id="several-header-lines",
        ),
        pytest.param(
            "10.1.2.3", ["198.51.100.7:4711"], "198.51.100.7", id="ipv4-with-port"
        ),
        pytest.param(
            "10.1.2.3", ["[2001:db8::1]:443"], "2001:db8::/64", id="ipv6-with-port"
        ),
        pytest.param("10.1.2.3", ["not-an-ip"], "10.1.2.3", id="garbage"),
        pytest.param(
            "10.1.2.3", ["198.51.100.7, unknown"], "10.1.2.3", id="garbage-on-right"
        ),
        pytest.param("10.1.2.3", [""], "10.1.2.3", id="empty-header"),
        pytest.param("10.1.2.3", [], "10.1.2.3", id="no-header"),
        pytest.param("10.1.2.3", ["10.4.4.4"], "10.1.2.3", id="all-hops-trusted"),
        pytest.param("2001:db8::1", [], "2001:db8::/64", id="ipv6-per-64"),
        pytest.param(None, ["198.51.100.7"], "unknown", id="no-peer"),
    ],
)
def test_the_source_is_the_peer_or_what_a_trusted_proxy_says(
    peer: str | None, forwarded_for: list[str], source: str
) -> None:
    assert PROXIES.source(peer, forwarded_for) == source


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    def header() -> Any:
        raise AssertionError("X-Forwarded-For was read")
        yield

    assert TrustedProxies([]).source("203.0.113.5", header()) == "203.0.113.5"
    assert PROXIES.source("203.0.113.5", header()) == "203.0.113.5"


def test_a_bad_trusted_proxy_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP address"):
        TrustedProxies(["10.0.0.0/33"])
