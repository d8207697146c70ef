"""Key lifecycle under an injected clock: publish, activate, retire, prune."""

from __future__ import annotations

import pytest

from tessera.keys.manager import KeyManager
from tessera.keys.ring import KeyRing, NoSigningKey, schedule
from tessera.keys.signing import SigningKey, generate_private_key, public_jwk
from tessera.store.keys import KeyRepository
from tests.keys.conftest import (
    MAX_TOKEN_TTL,
    PUBLISH_AHEAD,
    ROTATION_INTERVAL,
    T0,
    FakeClock,
    RecordingAudit,
)

# The rotation happens at T1; the successor activates at T1 + PUBLISH_AHEAD.
T1 = T0 + 1000
ACTIVATION = T1 + PUBLISH_AHEAD
RETIREMENT = ACTIVATION + MAX_TOKEN_TTL


async def _kids_by_alg(repository: KeyRepository) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for row in await repository.all():
        result.setdefault(row.alg, []).append(row.kid)
    return result


async def test_ensure_makes_one_immediate_key_per_missing_alg(
    manager: KeyManager,
    key_repository: KeyRepository,
    clock: FakeClock,
    audit: RecordingAudit,
) -> None:
    await manager.ensure({"ES256"})
    clock.now = T0 + 50
    await manager.ensure({"ES256", "EdDSA"})
    await manager.ensure({"ES256", "EdDSA"})

    rows = await key_repository.all()
    assert [(row.alg, row.created_at, row.activates_at) for row in rows] == [
        ("ES256", T0, T0),
        ("EdDSA", T0 + 50, T0 + 50),
    ]
    ring = await manager.load()
    assert ring.signing_key("ES256", T0 + 50).kid == rows[0].kid
    assert ring.signing_key("EdDSA", T0 + 50).kid == rows[1].kid
    assert [(event, fields["reason"]) for event, fields in audit.events] == [
        ("key.created", "initial"),
        ("key.created", "initial"),
    ]


async def test_rotate_without_a_predecessor_signs_at_once(
    manager: KeyManager, clock: FakeClock
) -> None:
    kid = await manager.rotate("ES256")

    ring = await manager.load()
    assert ring.signing_key("ES256", T0).kid == kid


@pytest.mark.parametrize(
    ("now", "signer", "published"),
    [
        pytest.param(T1, "old", {"old", "new"}, id="at rotation: new published"),
        pytest.param(ACTIVATION - 1, "old", {"old", "new"}, id="old signs until"),
        pytest.param(ACTIVATION, "new", {"old", "new"}, id="new signs from"),
        pytest.param(RETIREMENT - 1, "new", {"old", "new"}, id="old still published"),
        pytest.param(RETIREMENT, "new", {"new"}, id="old unpublished"),
    ],
)
async def test_rotated_key_publishes_then_signs_then_retires_its_predecessor(
    manager: KeyManager,
    clock: FakeClock,
    audit: RecordingAudit,
    now: int,
    signer: str,
    published: set[str],
) -> None:
    await manager.ensure({"ES256"})
    clock.now = T1
    new = await manager.rotate("ES256")
    ring_at_rotation = await manager.load()
    (old,) = {e.key.kid for e in ring_at_rotation.entries} - {new}
    names = {old: "old", new: "new"}
    clock.now = now

    fresh = await manager.load()

    for ring in (fresh, ring_at_rotation):
        assert names[ring.signing_key("ES256", now).kid] == signer
        assert {names[str(jwk["kid"])] for jwk in ring.public_jwks(now)} == published
    assert audit.events[-1] == (
        "key.created",
        {"kid": new, "alg": "ES256", "activates_at": ACTIVATION, "reason": "manual"},
    )


async def test_prune_deletes_a_key_only_once_its_tokens_have_expired(
    manager: KeyManager,
    key_repository: KeyRepository,
    clock: FakeClock,
    audit: RecordingAudit,
) -> None:
    await manager.ensure({"ES256"})
    (old,) = (await _kids_by_alg(key_repository))["ES256"]
    clock.now = T1
    new = await manager.rotate("ES256")

    clock.now = RETIREMENT - 1
    assert await manager.prune() == []
    assert (await _kids_by_alg(key_repository))["ES256"] == [old, new]

    clock.now = RETIREMENT
    assert await manager.prune() == [old]
    assert (await _kids_by_alg(key_repository))["ES256"] == [new]
    assert audit.events[-1] == ("key.retired", {"kid": old})


async def test_a_lone_key_never_retires(
    manager: KeyManager, key_repository: KeyRepository, clock: FakeClock
) -> None:
    await manager.ensure({"ES256"})
    clock.now = T0 + 100 * ROTATION_INTERVAL

    assert await manager.prune() == []
    assert len(await key_repository.all()) == 1


@pytest.mark.parametrize(
    ("elapsed", "rotations"),
    [
        pytest.param(ROTATION_INTERVAL - 1, 0, id="newest key younger than interval"),
        pytest.param(ROTATION_INTERVAL, 1, id="newest key exactly interval old"),
    ],
)
async def test_rotate_due_waits_for_the_rotation_interval(
    manager: KeyManager,
    key_repository: KeyRepository,
    clock: FakeClock,
    audit: RecordingAudit,
    elapsed: int,
    rotations: int,
) -> None:
    await manager.ensure({"ES256"})
    clock.now = T0 + elapsed

    rotated = await manager.rotate_due()

    assert len(rotated) == rotations
    assert len(await key_repository.all()) == 1 + rotations
    for kid in rotated:
        assert audit.events[-1] == (
            "key.created",
            {
                "kid": kid,
                "alg": "ES256",
                "activates_at": T0 + elapsed + PUBLISH_AHEAD,
                "reason": "scheduled",
            },
        )


async def test_rotate_due_does_not_rotate_twice_for_one_interval(
    manager: KeyManager, clock: FakeClock
) -> None:
    await manager.ensure({"ES256"})
    clock.now = T0 + ROTATION_INTERVAL

    assert len(await manager.rotate_due()) == 1
    assert await manager.rotate_due() == []


async def test_rotate_due_looks_at_the_newest_key_of_each_alg(
    manager: KeyManager, key_repository: KeyRepository, clock: FakeClock
) -> None:
    await manager.ensure({"ES256", "EdDSA"})
    clock.now = T0 + ROTATION_INTERVAL // 2
    await manager.rotate("ES256")
    clock.now = T0 + ROTATION_INTERVAL

    rotated = await manager.rotate_due()

    algs = {row.kid: row.alg for row in await key_repository.all()}
    assert [algs[kid] for kid in rotated] == ["EdDSA"]


async def test_rotate_due_prunes_retired_keys(
    manager: KeyManager, key_repository: KeyRepository, clock: FakeClock
) -> None:
    await manager.ensure({"ES256"})
    clock.now = T0 + ROTATION_INTERVAL
    (new,) = await manager.rotate_due()
    clock.now = T0 + ROTATION_INTERVAL + PUBLISH_AHEAD + MAX_TOKEN_TTL

    assert await manager.rotate_due() == []
    assert [row.kid for row in await key_repository.all()] == [new]


async def test_no_signing_key_for_an_alg_without_keys(manager: KeyManager) -> None:
    await manager.ensure({"ES256"})
    ring = await manager.load()

    with pytest.raises(NoSigningKey):
        ring.signing_key("RS256", T0)


async def test_jwks_etag_changes_with_the_published_set(
    manager: KeyManager, clock: FakeClock
) -> None:
    await manager.ensure({"ES256"})
    clock.now = T1
    await manager.rotate("ES256")
    ring = await manager.load()

    body_before, etag_before = ring.jwks(RETIREMENT - 1)
    body_after, etag_after = ring.jwks(RETIREMENT)

    assert body_before != body_after
    assert etag_before != etag_after
    assert ring.jwks(RETIREMENT) == (body_after, etag_after)


def test_the_published_key_set_does_not_depend_on_the_stores_order() -> None:
    """Keys of one activation time, in any order, give the same JWKS bytes
    and ETag: every node behind a load balancer answers alike."""
    keys = []
    for alg in ("ES256", "RS256", "EdDSA", "ES256"):
        private = generate_private_key(alg)
        jwk = public_jwk(private, alg)
        keys.append((SigningKey(str(jwk["kid"]), alg, private, T0), jwk))

    forward = KeyRing(schedule(keys, MAX_TOKEN_TTL), T0).jwks(T0)
    backward = KeyRing(schedule(keys[::-1], MAX_TOKEN_TTL), T0).jwks(T0)

    assert forward == backward
