"""Many nodes, one truth: what one node or operator changes, every node
serves within a second, and keys stay one consistent set."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import jwt
import pytest

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.core.secrets import generate_secret, hash_secret
from tessera.keys import master
from tessera.node import open_node
from tessera.server.app import build_app
from tessera.verify import InvalidToken, Verifier
from tests.cluster.conftest import ISSUER, Cluster
from tests.support import RunningServer, within

AUDIENCE = "https://api.example.test"
EIGHT_DAYS = 8 * 86400


def token(node: RunningServer, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        node.url("/oauth2/token"),
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )


def introspect(
    node: RunningServer, client_id: str, secret: str, value: str
) -> httpx.Response:
    return httpx.post(
        node.url("/oauth2/introspect"), data={"token": value}, auth=(client_id, secret)
    )


def jwks_keys(node: RunningServer) -> list[dict[str, str]]:
    return httpx.get(node.url("/oauth2/jwks")).json()["keys"]


def kids(node: RunningServer) -> list[str]:
    return sorted(key["kid"] for key in jwks_keys(node))


def algs(node: RunningServer) -> list[str]:
    return sorted(key["alg"] for key in jwks_keys(node))


def register(
    settings: Settings,
    client_id: str,
    scopes: frozenset[str] = frozenset({"read", "write"}),
) -> str:
    async def go() -> str:
        async with operator(settings) as op:
            return await op.register(client_id, scopes=scopes, audiences=(AUDIENCE,))

    return asyncio.run(go())


def change(settings: Settings, client_id: str, **fields: object) -> None:
    async def go() -> None:
        async with operator(settings) as op:
            record = await op.clients.record(client_id)
            await op.clients.save(dataclasses.replace(record.client, **fields))

    asyncio.run(go())


def test_nodes_starting_together_make_one_schema_and_one_key(
    cluster: Cluster,
) -> None:
    nodes = cluster.start(3)

    published = [kids(node) for node in nodes]

    # One key for access tokens, one RS256 key for ID tokens.
    assert algs(nodes[0]) == ["ES256", "RS256"]
    assert published == [published[0]] * 3


def test_a_token_from_any_node_verifies_with_any_nodes_keys(cluster: Cluster) -> None:
    nodes = cluster.start(3)
    secret = register(nodes[0].settings, "svc")
    for node in nodes:
        within(1.0, lambda node=node: token(node, "svc", secret).status_code == 200)

    for issuing in nodes:
        value = token(issuing, "svc", secret).json()["access_token"]
        for checking in nodes:
            jwks = httpx.get(checking.url("/oauth2/jwks")).json()
            verifier = Verifier.from_jwks(ISSUER, AUDIENCE, jwks)
            claims = asyncio.run(verifier.verify(value)).claims
            assert claims["client_id"] == "svc"
            answer = introspect(checking, "svc", secret, value).json()
            assert answer["active"] is True
            assert answer["jti"] == claims["jti"]


def test_client_changes_reach_every_node_within_a_second(cluster: Cluster) -> None:
    nodes = cluster.start(3)
    settings = nodes[0].settings

    def everywhere(client_id: str, secret: str, status: int) -> None:
        for node in nodes:
            within(
                1.0,
                lambda node=node: token(node, client_id, secret).status_code == status,
            )

    secret = register(settings, "changing")
    everywhere("changing", secret, 200)

    # A narrower scope set: a request for the dropped scope is refused.
    change(settings, "changing", scopes=frozenset({"read"}))
    for node in nodes:
        within(
            1.0,
            lambda node=node: (
                httpx.post(
                    node.url("/oauth2/token"),
                    data={"grant_type": "client_credentials", "scope": "write"},
                    auth=("changing", secret),
                ).status_code
                == 400
            ),
        )

    async def new_secret() -> str:
        async with operator(settings) as op:
            fresh = generate_secret()
            record = await op.clients.record("changing")
            await op.clients.save(
                dataclasses.replace(
                    record.client, secret_hash=hash_secret(op.pepper, fresh)
                )
            )
            return fresh

    rotated = asyncio.run(new_secret())
    everywhere("changing", secret, 401)
    everywhere("changing", rotated, 200)

    change(settings, "changing", disabled=True)
    everywhere("changing", rotated, 401)


def test_a_revocation_reaches_every_node_within_a_second(cluster: Cluster) -> None:
    nodes = cluster.start(3)
    secret = register(nodes[0].settings, "revoker")
    within(1.0, lambda: token(nodes[0], "revoker", secret).status_code == 200)
    value = token(nodes[0], "revoker", secret).json()["access_token"]
    for node in nodes:
        within(
            1.0,
            lambda node=node: introspect(node, "revoker", secret, value).json()[
                "active"
            ],
        )

    revoked = httpx.post(
        nodes[1].url("/oauth2/revoke"), data={"token": value}, auth=("revoker", secret)
    )

    assert revoked.status_code == 200
    for node in nodes:
        within(
            1.0,
            lambda node=node: (
                introspect(node, "revoker", secret, value).json() == {"active": False}
            ),
        )


def test_racing_nodes_rotate_a_due_key_exactly_once(cluster: Cluster) -> None:
    # A key made eight days ago: due for rotation (every seven days) when
    # three nodes start at the same moment, each rotating what is due.
    settings = Settings(
        database_url=cluster.database_url,
        master_key=cluster.env["TESSERA_MASTER_KEY"],
        issuer=ISSUER,
    )

    async def old_key() -> None:
        node = await open_node(settings, lambda: time.time() - EIGHT_DAYS)
        try:
            await node.keys.ensure({"ES256"})
        finally:
            await node.close()

    asyncio.run(old_key())

    nodes = cluster.start(3)

    for node in nodes:
        within(1.0, lambda node=node: algs(node) == ["ES256", "ES256", "RS256"])
    assert kids(nodes[0]) == kids(nodes[1]) == kids(nodes[2])
    created = [
        line
        for node in nodes
        for line in node.audit_lines()
        if '"key.created"' in line and '"scheduled"' in line
    ]
    assert len(created) == 1


async def test_racing_key_managers_add_one_key_per_period(cluster: Cluster) -> None:
    settings = Settings(
        database_url=cluster.database_url,
        master_key=cluster.env["TESSERA_MASTER_KEY"],
        issuer=ISSUER,
    )
    past = await open_node(settings, lambda: time.time() - EIGHT_DAYS)
    try:
        await past.keys.ensure({"ES256", "EdDSA"})
    finally:
        await past.close()
    managers = [await open_node(settings, time.time) for _ in range(6)]
    try:
        rotated = await asyncio.gather(*(m.keys.rotate_due() for m in managers))
        again = await asyncio.gather(*(m.keys.rotate_due() for m in managers))
        ring = await managers[0].keys.load()
    finally:
        for node in managers:
            await node.close()

    # One new ES256 key and one new EdDSA key, whichever managers won.
    assert sum(len(kids) for kids in rotated) == 2
    assert again == [[]] * 6
    assert len(ring.entries) == 4


def test_a_new_key_is_published_everywhere_before_any_node_signs(
    cluster: Cluster,
) -> None:
    nodes = cluster.start(3)
    secret = register(nodes[0].settings, "signer")
    within(1.0, lambda: token(nodes[2], "signer", secret).status_code == 200)
    before = kids(nodes[0])
    (old,) = [key["kid"] for key in jwks_keys(nodes[0]) if key["alg"] == "ES256"]

    async def rotate() -> str:
        async with operator(nodes[0].settings) as op:
            return await op.keys.rotate("ES256")

    new = asyncio.run(rotate())

    for node in nodes:
        within(1.0, lambda node=node: kids(node) == sorted([*before, new]))
        issued = token(node, "signer", secret).json()["access_token"]
        assert jwt.get_unverified_header(issued)["kid"] == old


async def test_clock_skew_between_nodes_is_covered_by_explicit_leeway(
    cluster_database: str,
) -> None:
    """A node whose clock runs 5 s ahead issues a token whose iat is in the
    future for everyone else: accepted within the verifier's leeway, refused
    without one; introspection on a node 5 s behind still reports it
    active."""
    settings = Settings(
        database_url=cluster_database,
        master_key=master.generate(),
        issuer=ISSUER,
        audit_log="/dev/null",
    )
    secret = await asyncio.to_thread(register, settings, "skewed")
    ahead = build_app(settings, clock=lambda: time.time() + 5, background=False)
    behind = build_app(settings, clock=lambda: time.time() - 5, background=False)
    async with (
        ahead.starlette.router.lifespan_context(ahead.starlette),
        behind.starlette.router.lifespan_context(behind.starlette),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=ahead), base_url=ISSUER
        ) as to_ahead,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=behind), base_url=ISSUER
        ) as to_behind,
    ):
        issued = await to_ahead.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("skewed", secret),
        )
        value = issued.json()["access_token"]
        jwks = (await to_behind.get("/oauth2/jwks")).json()
        answer = await to_behind.post(
            "/oauth2/introspect", data={"token": value}, auth=("skewed", secret)
        )

    assert answer.json()["active"] is True
    lenient = Verifier.from_jwks(ISSUER, AUDIENCE, jwks, leeway=10)
    assert (await lenient.verify(value)).claims["client_id"] == "skewed"
    strict = Verifier.from_jwks(ISSUER, AUDIENCE, jwks, leeway=0)
    with pytest.raises(InvalidToken):
        await strict.verify(value)
