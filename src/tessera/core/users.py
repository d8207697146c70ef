"""People who sign in: accounts, argon2id passwords, and the login check.

A login runs, before any page or session is involved:

    check_rate (per source) → check_lockout (account, then source)
    → load_account → check the password: one argon2id verification, always
    → count the failure (slow down, then lock out) or clear the account's count
    → rehash a password stored under older parameters

Unknown, disabled and wrong-password logins take the same path and the same
work (a dummy hash stands in for the missing or unusable one) and fail with
the same message, so neither the answer nor its timing tells whether an
account exists. Every presented username is counted and locked the same way
whether or not it exists, for the same reason.

Usernames are ASCII, stored lowercase and compared lowercase: ``Alice`` and
``alice`` are one account. Passwords are NFKC-normalised before hashing
(NIST SP 800-63B §5.1.1.2), so the same password typed on two keyboards that
compose characters differently is the same password.

No database and no HTTP here: accounts come from a UserDirectory, counts
from a Limiter (tessera.core.limits), time is an input.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from argon2 import PasswordHasher, Type
from argon2.exceptions import (
    InvalidHashError,
    VerificationError,
    VerifyMismatchError,
)

from tessera.core.audit import Audit
from tessera.core.limits import Limiter, Lockout, key_id
from tessera.core.secrets import looks_like_secret

# argon2id at OWASP's first recommended setting, m=19 MiB, t=2, p=1: one
# verification measured 18 ms on the 2-vCPU reference machine of
# docs/benchmarks.md (bench/bench_logins.py). RFC 9106's second
# recommendation (64 MiB, t=3, p=4) measured 110-170 ms and holds 64 MiB
# per login in progress: too much for a node that serves tokens on the same
# cores. Each stored hash names its own parameters, so raising these later
# rehashes every password at its owner's next login.
TIME_COST = 2
MEMORY_COST = 19 * 1024  # KiB
PARALLELISM = 1
# Verifications running at once; more wait their turn. Bounds the memory
# a burst of logins can take (4 × 19 MiB) and the worker threads it holds.
MAX_CONCURRENT = 4

# NIST SP 800-63B §5.1.1.2: at least 8 characters; at least 64 must be
# accepted. The upper cap only keeps the hash input small. Not done: the
# same section asks that new passwords be checked against a list of known
# breached ones; check_new_password taking such a list would resolve it.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

# Login attempts per source address: sustained per second, and burst. Far
# above what a person types; a script guessing across many accounts from
# one address is slowed to this whatever the per-account counts say.
SOURCE_RATE = 10.0
SOURCE_BURST = 20

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")
WRONG_CREDENTIALS = "Wrong username or password."
TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Try again later."


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    username: str
    name: str | None
    email: str | None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    """A user and their password hash, as the login check reads them."""

    user: User
    password_hash: str = field(repr=False)


class UserDirectory(Protocol):
    async def get_by_username(self, username: str) -> Account | None:
        """The account whose (lowercase) username this is, or None."""
        ...


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login. ``new_password_hash`` is set when the stored hash
    was made with other parameters: the caller stores it in its place."""

    user: User
    new_password_hash: str | None = field(default=None, repr=False)


class LoginError(Exception):
    """A refused login. ``message`` is what the person signing in may see;
    ``reason`` is for logs and the audit only."""

    message = WRONG_CREDENTIALS

    def __init__(self, reason: str) -> None:
        super().__init__(self.message)
        self.reason = reason


class LoginFailed(LoginError):
    """Wrong username or password, whichever it was."""


class LoginLocked(LoginError):
    """Too many attempts from this source or for this username; nothing was
    checked. ``retry_after`` is in whole seconds, for a Retry-After header."""

    message = TOO_MANY_ATTEMPTS

    def __init__(self, wait: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = max(1, math.ceil(wait))


# Usernames.


def normalize_username(text: str) -> str | None:
    """The username as stored: lowercase, or None if it cannot be one."""
    # ASCII first: str.lower() maps some non-ASCII letters (the Kelvin sign)
    # onto ASCII ones, which would give one account two spellings.
    if not text.isascii():
        return None
    username = text.strip().lower()
    return username if USERNAME.match(username) else None


def check_username(text: str) -> str:
    username = normalize_username(text)
    if username is None:
        raise ValueError(
            "a username is 1 to 128 letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return username


def loggable_username(presented: str) -> str:
    """The presented username as the audit log may show it: itself if it is
    one, else a digest, so that a password typed into the wrong field, or a
    pasted secret or token, never reaches the log."""
    username = normalize_username(presented)
    if (
        username is not None
        and not looks_like_secret(presented.strip())
        and not username.startswith("eyj")
    ):
        return username
    digest = hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()
    return "sha256:" + digest[:16]


def new_user(
    username: str, *, name: str | None = None, email: str | None = None
) -> User:
    return User(str(uuid.uuid4()), check_username(username), name, email)


def check_new_password(password: str) -> None:
    length = len(unicodedata.normalize("NFKC", password))
    if length < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if length > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


# Passwords.


class Passwords:
    """argon2id hashing, off the event loop: argon2 releases the GIL, so a
    verification in a worker thread leaves the loop serving other requests.

    ``dummy_hash`` is a hash of a random password nobody knows, made with
    the same parameters, for the logins that have no hash to check.
    """

    def __init__(
        self,
        *,
        time_cost: int = TIME_COST,
        memory_cost: int = MEMORY_COST,
        parallelism: int = PARALLELISM,
        max_concurrent: int = MAX_CONCURRENT,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        self.dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))

    async def hash(self, password: str) -> str:
        """The PHC string (``$argon2id$v=19$m=...``) of a new salted hash."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, _encode(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` is the one hashed, compared in constant time
        by the library. Raises ValueError for a hash it cannot read."""
        secret = _encode(password)
        async with self._slots:
            try:
                return await asyncio.to_thread(
                    self._hasher.verify, password_hash, secret
                )
            except VerifyMismatchError:
                return False
            except (InvalidHashError, VerificationError):
                raise ValueError("not a usable argon2 hash") from None

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than these."""
        return self._hasher.check_needs_rehash(password_hash)


def _encode(password: str) -> bytes:
    # surrogatepass: a lone surrogate is hashed rather than raising.
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


# Throttling.


class LoginThrottle:
    """Slowdown, then lockout, per account and per source address, and a
    rate limit per source; counts are held by the Limiter.

    Counters are keyed ``login-user:<username>`` and ``login-source:<source>``
    (the source as ``TrustedProxies.source`` gives it: IPv6 per /64). A
    success clears the account's failures, never the source's: otherwise an
    attacker holding one account could reset their address's count between
    guesses at others. ``sleep`` answers a slowed-down failure; tests pass
    one that only records.
    """

    def __init__(
        self,
        limiter: Limiter,
        lockout: Lockout,
        audit: Audit,
        *,
        rate: float = SOURCE_RATE,
        burst: int = SOURCE_BURST,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limiter = limiter
        self._lockout = lockout
        self._audit = audit
        self._rate = rate
        self._burst = burst
        self._sleep = sleep

    async def check(self, username: str, source: str, now: float) -> None:
        """Raise LoginLocked if the source is over its rate, or the account
        or the source is locked out."""
        if self._rate:
            wait = await self._limiter.hit(
                _source_key(source), self._rate, self._burst, now
            )
            if wait:
                raise LoginLocked(wait, "rate limited")
        for key, reason in (
            (_user_key(username), "account locked out"),
            (_source_key(source), "source locked out"),
        ):
            until = await self._limiter.locked_until(key, now)
            if until is not None:
                raise LoginLocked(until - now, reason)

    async def failed(self, username: str, source: str, now: float) -> None:
        """Count a failure against both; lock what reached the threshold,
        then wait the longer of the two slowdowns."""
        by_user = await self._count(
            _user_key(username), now, username=loggable_username(username)
        )
        by_source = await self._count(_source_key(source), now, source=source)
        delay = max(self._lockout.delay(by_user), self._lockout.delay(by_source))
        if delay:
            await self._sleep(delay)

    async def succeeded(self, username: str) -> None:
        await self._limiter.clear_failures(_user_key(username))

    async def close(self) -> None:
        await self._limiter.close()

    async def _count(self, key: str, now: float, **subject: str) -> int:
        lockout = self._lockout
        failures = await self._limiter.record_failure(key, now, lockout.window)
        if failures >= lockout.lockout_after:
            until = now + lockout.lockout_seconds
            await self._limiter.lock(key, until, now)
            self._audit.emit(
                "user.locked_out", **subject, failures=failures, until=round(until, 3)
            )
        return failures


def _user_key(username: str) -> str:
    return "login-user:" + key_id(username.strip().lower())


def _source_key(source: str) -> str:
    return "login-source:" + key_id(source)


# The login.


async def authenticate_user(
    username: str,
    password: str,
    *,
    users: UserDirectory,
    passwords: Passwords,
    throttle: LoginThrottle,
    audit: Audit,
    source: str,
    now: float,
) -> Login:
    """The user these credentials prove. Raises LoginFailed (wrong username
    or password, whichever) or LoginLocked (nothing checked)."""
    shown = loggable_username(username)
    try:
        await throttle.check(username, source, now)
    except LoginLocked as refusal:
        audit.emit(
            "user.login_failed", username=shown, source=source, reason=refusal.reason
        )
        raise

    account = await load_account(users, username)
    reason = await check_password(account, password, passwords)
    if reason is not None:
        audit.emit("user.login_failed", username=shown, source=source, reason=reason)
        await throttle.failed(username, source, now)
        raise LoginFailed(reason)

    assert account is not None
    await throttle.succeeded(username)
    user = account.user
    audit.emit(
        "user.login", user_id=user.user_id, username=user.username, source=source
    )
    new_hash = None
    if passwords.needs_rehash(account.password_hash):
        new_hash = await passwords.hash(password)
    return Login(user, new_hash)


async def load_account(users: UserDirectory, presented: str) -> Account | None:
    username = normalize_username(presented)
    if username is None:
        return None
    return await users.get_by_username(username)


async def check_password(
    account: Account | None, password: str, passwords: Passwords
) -> str | None:
    """Why the login fails, or None. Whatever the reason, exactly one
    argon2id verification has run when this returns."""
    if len(password) > MAX_PASSWORD_LENGTH:
        # Checked first: the hash input stays small whoever is named.
        await passwords.verify(passwords.dummy_hash, "")
        return "password too long"
    if account is None or account.user.disabled:
        await passwords.verify(passwords.dummy_hash, password)
        return "unknown user" if account is None else "user disabled"
    try:
        matched = await passwords.verify(account.password_hash, password)
    except ValueError:
        await passwords.verify(passwords.dummy_hash, password)
        return "unusable password hash"
    return None if matched else "wrong password"
