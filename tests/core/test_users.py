"""Users, argon2id passwords and the login check: tessera.core.users over
the in-process limiter, with the time given and a sleep that only records.

Hashes here use tiny argon2 parameters, so that the tests stay fast; the
parameters themselves are pinned by one test of the defaults."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from argon2 import PasswordHasher, extract_parameters

from tessera.config import Settings
from tessera.core.limits import Lockout
from tessera.core.secrets import generate_secret
from tessera.core.users import (
    MEMORY_COST,
    PARALLELISM,
    TIME_COST,
    Account,
    Login,
    LoginError,
    LoginFailed,
    LoginLocked,
    LoginThrottle,
    Passwords,
    User,
    authenticate_user,
    check_new_password,
    check_username,
    loggable_username,
    new_user,
    normalize_username,
)
from tessera.server.limits_local import LocalLimiter
from tessera.server.limits_redis import open_login_throttle

NOW = 1_700_000_000.0
PASSWORD = "correct horse battery"
CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
ALICE = User("7c9e6679-7425-40de-944b-e07fc1f90ae7", "alice", "Alice", None)
CAROL = User("16fd2706-8baf-433b-82eb-8c7fada847da", "carol", None, None, True)


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [fields for name, fields in self.events if name == event]


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class SpyPasswords(Passwords):
    """Records the hash of every verification."""

    def __init__(self, **parameters: int) -> None:
        super().__init__(**parameters)
        self.verified: list[str] = []

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return await super().verify(password_hash, password)


class Directory:
    def __init__(self, *accounts: Account) -> None:
        self._accounts = {a.user.username: a for a in accounts}

    async def get_by_username(self, username: str) -> Account | None:
        return self._accounts.get(username)


class Setup:
    """Alice (PASSWORD) and the disabled Carol (PASSWORD), a throttle over a
    fresh local limiter slowing after 3 failures and locking for 60 s at 5."""

    def __init__(self, *, alice_hash: str | None = None) -> None:
        self.passwords = SpyPasswords(**CHEAP)
        self.audit = Events()
        self.sleeps = Sleeps()
        hashed = PasswordHasher(**CHEAP).hash(PASSWORD)
        self.users = Directory(
            Account(ALICE, alice_hash or hashed), Account(CAROL, hashed)
        )
        self.throttle = LoginThrottle(
            LocalLimiter(),
            Lockout(window=900, slowdown_after=3, lockout_after=5, lockout_seconds=60),
            self.audit,
            sleep=self.sleeps,
        )

    async def login(
        self,
        username: str,
        password: str,
        *,
        source: str = "192.0.2.1",
        now: float = NOW,
    ) -> Login:
        return await authenticate_user(
            username,
            password,
            users=self.users,
            passwords=self.passwords,
            throttle=self.throttle,
            audit=self.audit,
            source=source,
            now=now,
        )

    async def outcome(self, username: str, password: str, **options: Any) -> str:
        """One of ok, failed, or "locked N" with the Retry-After it carries."""
        try:
            await self.login(username, password, **options)
        except LoginLocked as error:
            return f"locked {error.retry_after}"
        except LoginFailed:
            return "failed"
        return "ok"


# Passwords.


async def test_a_hash_is_argon2id_and_verifies_its_password_only() -> None:
    passwords = Passwords(**CHEAP)
    hashed = await passwords.hash(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert await passwords.verify(hashed, PASSWORD)
    assert not await passwords.verify(hashed, PASSWORD + " ")
    assert not await passwords.verify(hashed, "")
    # Salted: the same password never hashes the same twice.
    assert await passwords.hash(PASSWORD) != hashed


def test_the_default_parameters_are_owasps_argon2id_minimum_or_more() -> None:
    assert (MEMORY_COST, TIME_COST, PARALLELISM) == (19456, 2, 1)
    parameters = extract_parameters(Passwords().dummy_hash)
    assert parameters.type.name == "ID"
    assert parameters.memory_cost >= 19456
    assert parameters.time_cost >= 2


async def test_a_hash_made_with_other_parameters_needs_rehash() -> None:
    passwords = Passwords(**CHEAP)
    stronger = Passwords(time_cost=2, memory_cost=16, parallelism=1)
    assert not passwords.needs_rehash(await passwords.hash(PASSWORD))
    assert passwords.needs_rehash(await stronger.hash(PASSWORD))
    # An older hash still verifies: it names its own parameters.
    assert await passwords.verify(await stronger.hash(PASSWORD), PASSWORD)


@pytest.mark.parametrize("garbage", ["", "plain", "$argon2id$v=19$m=8,t=1,p=1$xx"])
async def test_an_unreadable_hash_raises_value_error(garbage: str) -> None:
    with pytest.raises(ValueError, match="not a usable argon2 hash"):
        await Passwords(**CHEAP).verify(garbage, PASSWORD)


async def test_passwords_are_compared_after_nfkc_normalisation() -> None:
    passwords = Passwords(**CHEAP)
    composed = unicodedata.normalize("NFC", "café au lait")
    decomposed = unicodedata.normalize("NFD", "café au lait")
    assert composed != decomposed
    assert await passwords.verify(await passwords.hash(composed), decomposed)


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        pytest.param("1234567", False, id="7-characters"),
        pytest.param("12345678", True, id="8-characters"),
        pytest.param("éééééééé", True, id="8-non-ascii"),
        pytest.param("x" * 1024, True, id="1024-characters"),
        pytest.param("x" * 1025, False, id="1025-characters"),
    ],
)
def test_new_passwords_are_8_to_1024_characters(password: str, accepted: bool) -> None:
    if accepted:
        check_new_password(password)
    else:
        with pytest.raises(ValueError, match="a password has at"):
            check_new_password(password)


# Usernames.


@pytest.mark.parametrize(
    ("presented", "stored"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        (" ALICE ", "alice"),
        ("a.b_c-d+e@example.org", "a.b_c-d+e@example.org"),
        ("0", "0"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("", None),
        ("-alice", None),
        ("al ice", None),
        ("al/ice", None),
        ("élise", None),
        # The Kelvin sign lowercases to an ASCII k: not a second spelling.
        ("\u212aim", None),
    ],
)
def test_usernames_are_ascii_and_lowercased(presented: str, stored: str) -> None:
    assert normalize_username(presented) == stored


def test_new_user_has_a_uuid_and_a_checked_username() -> None:
    user = new_user("Dave", name="Dave D", email="dave@example.org")
    assert user.username == "dave"
    assert len(user.user_id) == 36 and user.user_id.count("-") == 4
    assert new_user("dave").user_id != user.user_id
    with pytest.raises(ValueError, match="a username is"):
        check_username("no spaces")


@pytest.mark.parametrize(
    ("presented", "shown"),
    [
        pytest.param("Alice", "alice", id="username"),
        pytest.param("x" * 300, "sha256:", id="too-long"),
        pytest.param("pass word!", "sha256:", id="not-a-username"),
        pytest.param(generate_secret(), "sha256:", id="client-secret"),
        pytest.param("eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "sha256:", id="jwt"),
    ],
)
def test_presented_usernames_are_logged_only_if_they_look_like_one(
    presented: str, shown: str
) -> None:
    logged = loggable_username(presented)
    assert logged.startswith(shown)
    if shown == "sha256:":
        assert len(logged) == len("sha256:") + 16


# Logging in.


async def test_a_login_returns_the_user_and_audits_it() -> None:
    setup = Setup()
    login = await setup.login("Alice", PASSWORD)
    assert login == Login(ALICE, None)
    assert setup.audit.events == [
        (
            "user.login",
            {"user_id": ALICE.user_id, "username": "alice", "source": "192.0.2.1"},
        )
    ]


@pytest.mark.parametrize(
    ("username", "password", "reason", "hashed"),
    [
        pytest.param("alice", "wrong password", "wrong password", "alice", id="wrong"),
        pytest.param("bob", PASSWORD, "unknown user", "dummy", id="unknown"),
        pytest.param("carol", PASSWORD, "user disabled", "dummy", id="disabled"),
        pytest.param("no such@@", PASSWORD, "unknown user", "dummy", id="malformed"),
        pytest.param("alice", "x" * 1025, "password too long", "dummy", id="long"),
    ],
)
async def test_every_failure_looks_the_same_and_costs_one_verification(
    username: str, password: str, reason: str, hashed: str
) -> None:
    setup = Setup()
    with pytest.raises(LoginFailed) as caught:
        await setup.login(username, password)

    error = caught.value
    assert str(error) == error.message == "Wrong username or password."
    assert error.reason == reason
    alice_hash = (await setup.users.get_by_username("alice")).password_hash
    expected = setup.passwords.dummy_hash if hashed == "dummy" else alice_hash
    assert setup.passwords.verified == [expected]
    assert setup.audit.events == [
        (
            "user.login_failed",
            {
                "username": loggable_username(username),
                "source": "192.0.2.1",
                "reason": reason,
            },
        )
    ]


async def test_an_unusable_stored_hash_fails_like_a_wrong_password() -> None:
    setup = Setup(alice_hash="not a hash")
    with pytest.raises(LoginFailed) as caught:
        await setup.login("alice", PASSWORD)
    assert caught.value.reason == "unusable password hash"
    # The unreadable hash is refused before any hashing; the dummy does the work.
    assert setup.passwords.verified == ["not a hash", setup.passwords.dummy_hash]


async def test_no_event_ever_holds_a_password_or_a_hash() -> None:
    setup = Setup()
    for username in ("alice", "bob", "carol"):
        await setup.outcome(username, "letmein-please")
    await setup.outcome("alice", PASSWORD)
    logged = repr(setup.audit.events)
    assert len(setup.audit.events) == 4
    assert "letmein" not in logged
    assert PASSWORD not in logged
    assert "$argon2" not in logged


async def test_a_password_typed_as_the_username_is_logged_as_a_digest() -> None:
    setup = Setup()
    pasted = generate_secret()
    await setup.outcome(pasted, PASSWORD)
    [event] = setup.audit.named("user.login_failed")
    assert event["username"].startswith("sha256:")
    assert pasted.lower() not in repr(setup.audit.events).lower()


async def test_a_hash_under_old_parameters_comes_back_rehashed() -> None:
    weaker = Passwords(time_cost=1, memory_cost=8, parallelism=1)
    setup = Setup()
    setup.passwords = SpyPasswords(time_cost=2, memory_cost=16, parallelism=1)
    setup.users = Directory(Account(ALICE, await weaker.hash(PASSWORD)))

    login = await setup.login("alice", PASSWORD)

    assert login.user == ALICE
    assert login.new_password_hash is not None
    assert "$argon2" not in repr(login)
    assert not setup.passwords.needs_rehash(login.new_password_hash)
    assert await setup.passwords.verify(login.new_password_hash, PASSWORD)


# Throttling: 3 failures free, then 0.25 s doubling; the 5th locks for 60 s.


def _sources(count: int) -> list[str]:
    """A source per attempt, for tests about the account's count alone."""
    return [f"10.0.0.{n}" for n in range(count)]


async def test_failures_past_the_threshold_are_slowed_then_locked_out() -> None:
    setup = Setup()
    outcomes = [await setup.outcome("alice", "wrong!!!", source=s) for s in _sources(5)]
    assert outcomes == ["failed"] * 5
    assert setup.sleeps.delays == [0.25, 0.5]
    assert setup.audit.named("user.locked_out") == [
        {"username": "alice", "failures": 5, "until": NOW + 60}
    ]


async def test_a_locked_account_is_refused_without_checking_the_password() -> None:
    setup = Setup()
    for source in _sources(5):
        await setup.outcome("alice", "wrong!!!", source=source)
    setup.passwords.verified.clear()

    with pytest.raises(LoginLocked) as caught:
        await setup.login("ALICE", PASSWORD, source="198.51.100.7", now=NOW + 10)

    assert caught.value.retry_after == 50
    assert caught.value.reason == "account locked out"
    assert isinstance(caught.value, LoginError)
    assert str(caught.value) == "Too many sign-in attempts. Try again later."
    assert setup.passwords.verified == []
    assert setup.audit.events[-1] == (
        "user.login_failed",
        {"username": "alice", "source": "198.51.100.7", "reason": "account locked out"},
    )


async def test_the_lock_ends_and_the_count_starts_again() -> None:
    setup = Setup()
    for source in _sources(5):
        await setup.outcome("alice", "wrong!!!", source=source)
    assert await setup.outcome("alice", PASSWORD, now=NOW + 59.5) == "locked 1"
    assert await setup.outcome("alice", PASSWORD, now=NOW + 60) == "ok"
    setup.sleeps.delays.clear()
    for source in _sources(4):
        await setup.outcome("alice", "wrong!!!", source=source, now=NOW + 61)
    assert setup.sleeps.delays == [0.25]


async def test_a_success_clears_the_accounts_failures() -> None:
    setup = Setup()
    for source in _sources(4):
        await setup.outcome("alice", "wrong!!!", source=source)
    assert await setup.outcome("alice", PASSWORD) == "ok"
    setup.sleeps.delays.clear()
    outcomes = [
        await setup.outcome("Alice", "wrong!!!", source=s) for s in _sources(9)[5:]
    ]
    # Without the clearing, the first of these would have locked the account.
    assert outcomes == ["failed"] * 4
    assert setup.sleeps.delays == [0.25]


async def test_unknown_usernames_are_counted_and_locked_like_real_ones() -> None:
    real, unknown = Setup(), Setup()
    assert [await real.outcome("alice", "wrong!!!", source=s) for s in _sources(7)] == [
        await unknown.outcome("nobody", "wrong!!!", source=s) for s in _sources(7)
    ]
    assert real.sleeps.delays == unknown.sleeps.delays


async def test_one_source_guessing_across_accounts_is_locked_out() -> None:
    setup = Setup()
    outcomes = [await setup.outcome(f"user{n}", "guess!!!") for n in range(5)]
    assert outcomes == ["failed"] * 5
    assert setup.sleeps.delays == [0.25, 0.5]
    assert setup.audit.named("user.locked_out") == [
        {"source": "192.0.2.1", "failures": 5, "until": NOW + 60}
    ]
    # Alice, from that source: refused unchecked. From another: fine.
    assert await setup.outcome("alice", PASSWORD) == "locked 60"
    assert await setup.outcome("alice", PASSWORD, source="192.0.2.9") == "ok"


async def test_a_success_does_not_clear_the_sources_failures() -> None:
    setup = Setup()
    for n in range(4):
        await setup.outcome(f"user{n}", "guess!!!")
    # The attacker's own account logs in between guesses at others'.
    assert await setup.outcome("alice", PASSWORD) == "ok"
    assert await setup.outcome("user9", "guess!!!") == "failed"
    assert await setup.outcome("alice", PASSWORD) == "locked 60"


async def test_the_source_is_rate_limited_to_a_burst_of_20_then_10_a_second() -> None:
    setup = Setup()
    outcomes = [await setup.outcome("alice", PASSWORD) for _ in range(21)]
    assert outcomes == ["ok"] * 20 + ["locked 1"]
    assert setup.audit.events[-1][1]["reason"] == "rate limited"
    assert await setup.outcome("alice", PASSWORD, now=NOW + 0.1) == "ok"
    assert await setup.outcome("alice", PASSWORD, source="192.0.2.2") == "ok"


async def test_the_throttle_takes_the_login_settings() -> None:
    settings = Settings(
        redis_url="",
        login_slowdown_after=2,
        login_lockout_after=2,
        login_lockout_seconds=30,
    )
    audit = Events()
    throttle = open_login_throttle(settings, audit)
    try:
        await throttle.failed("alice", "192.0.2.1", NOW)
        await throttle.check("alice", "192.0.2.1", NOW)
        await throttle.failed("alice", "192.0.2.2", NOW)
        with pytest.raises(LoginLocked) as caught:
            await throttle.check("alice", "192.0.2.3", NOW)
    finally:
        await throttle.close()
    assert caught.value.retry_after == 30
    assert audit.named("user.locked_out") == [
        {"username": "alice", "failures": 2, "until": NOW + 30}
    ]
