"""The refresh-token grant's rules, against an in-memory store with the
clock in the test's hands: rotation, the reuse grace window, reuse
detection, and a rotation lost to a concurrent request."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tessera.core.errors import InvalidGrant, InvalidScope
from tessera.core.form import Form
from tessera.core.id_tokens import IdTokens
from tessera.core.minting import AccessTokenMinter
from tessera.core.refresh import (
    RefreshTokenGrant,
    RefreshTokenRecord,
    RefreshTokens,
    new_refresh_token,
)
from tessera.core.user_tokens import Authorization, UserTokens
from tessera.core.users import User
from tessera.keys.ring import KeyRing, schedule
from tessera.keys.signing import SigningKey, public_jwk
from tests.core.clients import make_client

NOW = 1_700_000_000
GRACE = 10
TTL = 30 * 86400
ISSUER = "https://tessera.example.test"
CLIENT = make_client(
    client_id="app",
    scopes=frozenset({"openid", "profile", "read", "write"}),
    audiences=("https://api.example.test",),
    grant_types=frozenset({"authorization_code", "refresh_token"}),
)
ADA = User("user-1", "ada", "Ada", "ada@example.test")


class Audit:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


class People:
    def __init__(self, *users: User) -> None:
        self.users = {user.user_id: user for user in users}

    async def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)


class MemoryStore:
    """The store's contract in memory. ``before_rotate`` runs just before a
    rotation, as a concurrent request would."""

    def __init__(self) -> None:
        self.records: dict[str, RefreshTokenRecord] = {}
        self.before_rotate: list[Any] = []

    async def add(self, token: str, record: RefreshTokenRecord) -> None:
        self.records[token] = record

    async def find(self, token: str) -> RefreshTokenRecord | None:
        record = self.records.get(token)
        if record is None:
            return None
        revoked = [
            r.revoked_at
            for r in self.records.values()
            if r.family_id == record.family_id and r.revoked_at is not None
        ]
        return dataclasses.replace(record, revoked_at=min(revoked, default=None))

    async def rotate(
        self, token: str, successor: str, record: RefreshTokenRecord, now: int
    ) -> bool:
        while self.before_rotate:
            await self.before_rotate.pop(0)()
        current = self.records[token]
        if current.rotated_at is not None or current.revoked_at is not None:
            return False
        self.records[token] = dataclasses.replace(current, rotated_at=now)
        self.records[successor] = record
        return True

    async def revoke_family(self, family_id: str, now: int) -> int:
        count = 0
        for token, record in self.records.items():
            if record.family_id == family_id and record.revoked_at is None:
                self.records[token] = dataclasses.replace(record, revoked_at=now)
                count += 1
        return count

    def family(self, token: str) -> list[RefreshTokenRecord]:
        family_id = self.records[token].family_id
        return [r for r in self.records.values() if r.family_id == family_id]


@pytest.fixture(scope="module")
def keyring() -> KeyRing:
    keys = []
    for alg, private in (
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ):
        jwk = public_jwk(private, alg)
        keys.append((SigningKey(str(jwk["kid"]), alg, private, 0), jwk))
    return KeyRing(schedule(keys, 3600), NOW)


class Setup:
    def __init__(self, keyring: KeyRing) -> None:
        self.store = MemoryStore()
        self.audit = Audit()
        self.people = People(ADA)
        minter = AccessTokenMinter(
            ISSUER, keyring, default_alg="ES256", default_ttl=900, max_ttl=3600
        )
        tokens = UserTokens(
            minter,
            IdTokens(ISSUER, lambda: keyring, max_ttl=3600),
            self.people,
            fallback_audience=ISSUER + "/oauth2/userinfo",
            audit=self.audit,
        )
        self.refresh = RefreshTokens(
            self.store, ttl=TTL, reuse_grace=GRACE, audit=self.audit
        )
        self.grant = RefreshTokenGrant(self.refresh, tokens)

    async def first_token(self, scope: str = "openid profile read") -> str:
        token, _ = await self.refresh.start_family(
            "app", Authorization("user-1", scope, NOW - 60), NOW
        )
        return token

    async def use(self, token: str, now: float, **form: str) -> dict[str, Any]:
        fields = {"grant_type": "refresh_token", "refresh_token": token, **form}
        body = "&".join(f"{name}={value}" for name, value in fields.items())
        return await self.grant.handle(Form.parse(body.encode()), CLIENT, now)


@pytest.fixture
def setup(keyring: KeyRing) -> Setup:
    return Setup(keyring)


async def test_a_use_rotates_the_token(setup: Setup) -> None:
    token = await setup.first_token()

    body = await setup.use(token, NOW + 5)

    successor = body["refresh_token"]
    assert successor != token
    assert setup.store.records[token].rotated_at == NOW + 5
    assert setup.store.records[successor].expires_at == NOW + 5 + TTL
    assert setup.store.records[successor].family_id == (
        setup.store.records[token].family_id
    )


@pytest.mark.parametrize("delay", [0, 1, GRACE])
async def test_a_reuse_within_the_grace_window_adds_a_sibling(
    setup: Setup, delay: int
) -> None:
    token = await setup.first_token()
    first = (await setup.use(token, NOW))["refresh_token"]

    again = (await setup.use(token, NOW + delay))["refresh_token"]

    assert again not in (token, first)
    assert len(setup.store.family(token)) == 3
    assert all(r.revoked_at is None for r in setup.store.family(token))


async def test_a_reuse_after_the_grace_window_revokes_the_family(
    setup: Setup,
) -> None:
    token = await setup.first_token()
    successor = (await setup.use(token, NOW))["refresh_token"]

    with pytest.raises(InvalidGrant) as raised:
        await setup.use(token, NOW + GRACE + 1)

    assert raised.value.detail == "refresh token reused"
    assert all(r.revoked_at == NOW + GRACE + 1 for r in setup.store.family(token))
    with pytest.raises(InvalidGrant) as after:
        await setup.use(successor, NOW + GRACE + 2)
    assert after.value.detail == "refresh token revoked"
    assert setup.audit.events[-1][0] == "refresh_token.family_revoked"


async def test_a_rotation_lost_to_a_concurrent_one_is_a_reuse_in_grace(
    setup: Setup,
) -> None:
    token = await setup.first_token()

    async def concurrent() -> None:
        await setup.use(token, NOW)

    setup.store.before_rotate.append(concurrent)
    body = await setup.use(token, NOW)

    assert len(setup.store.family(token)) == 3
    assert body["refresh_token"] in setup.store.records


async def test_a_rotation_lost_to_a_revocation_is_refused(setup: Setup) -> None:
    token = await setup.first_token()
    family_id = setup.store.records[token].family_id

    async def revoke() -> None:
        await setup.store.revoke_family(family_id, NOW)

    setup.store.before_rotate.append(revoke)
    with pytest.raises(InvalidGrant) as raised:
        await setup.use(token, NOW)

    assert raised.value.detail == "refresh token revoked"


async def test_a_token_joining_a_revoked_family_is_revoked(setup: Setup) -> None:
    """A successor stored while its family was being revoked is found
    revoked: revocation is read across the family."""
    token = await setup.first_token()
    record = setup.store.records[token]
    await setup.store.revoke_family(record.family_id, NOW)
    late = new_refresh_token()
    await setup.store.add(late, dataclasses.replace(record, revoked_at=None))

    with pytest.raises(InvalidGrant) as raised:
        await setup.use(late, NOW)

    assert raised.value.detail == "refresh token revoked"


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        ("read", "read"),
        ("openid read", "openid read"),
        ("profile openid read", "openid profile read"),
    ],
)
async def test_the_scope_may_narrow(setup: Setup, requested: str, granted: str) -> None:
    token = await setup.first_token()

    body = await setup.use(token, NOW, scope=requested.replace(" ", "+"))

    assert body["scope"] == granted
    assert ("id_token" in body) == ("openid" in granted)
    successor = setup.store.records[body["refresh_token"]]
    assert successor.scope == "openid profile read"


async def test_the_scope_may_not_widen(setup: Setup) -> None:
    token = await setup.first_token()

    with pytest.raises(InvalidScope):
        await setup.use(token, NOW, scope="read+write")

    assert setup.store.records[token].rotated_at is None


async def test_a_scope_the_client_lost_is_not_conveyed(setup: Setup) -> None:
    token = await setup.first_token("openid profile read admin")

    body = await setup.use(token, NOW)

    assert body["scope"] == "openid profile read"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        pytest.param({"expires_at": NOW}, "refresh token expired", id="expired"),
        pytest.param(
            {"client_id": "other"}, "refresh token of another client", id="other"
        ),
    ],
)
async def test_a_token_that_no_longer_holds_is_refused(
    setup: Setup, change: dict[str, Any], detail: str
) -> None:
    token = await setup.first_token()
    setup.store.records[token] = dataclasses.replace(
        setup.store.records[token], **change
    )

    with pytest.raises(InvalidGrant) as raised:
        await setup.use(token, NOW)

    assert raised.value.detail == detail
    assert setup.store.records[token].rotated_at is None


@pytest.mark.parametrize(
    "people",
    [pytest.param(People(), id="deleted"), pytest.param(None, id="disabled")],
)
async def test_a_person_gone_or_disabled_refreshes_nothing(
    setup: Setup, people: People | None
) -> None:
    token = await setup.first_token()
    setup.people.users = (
        people.users
        if people is not None
        else {"user-1": dataclasses.replace(ADA, disabled=True)}
    )

    with pytest.raises(InvalidGrant) as raised:
        await setup.use(token, NOW)

    assert raised.value.detail == "user unknown or disabled"
