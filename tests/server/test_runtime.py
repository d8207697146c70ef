"""The running node in-process: what the hot path touches, and how keys and
client changes reach it."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import httpx
import jwt
import pytest

from tessera.cli.context import operator
from tessera.config import Settings
from tessera.core.clients import Client
from tessera.server.app import build_app


class FailingStore:
    async def all(self) -> list[Client]:
        raise AssertionError("the hot path read the store")


class Clock:
    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def register(settings: Settings, client_id: str) -> str:
    async with operator(settings) as op:
        return await op.register(
            client_id,
            scopes=frozenset({"read"}),
            audiences=("https://api.example.test",),
        )


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        issuer="http://tessera.test",
        audit_log=str(tmp_path / "audit.jsonl"),
        key_publish_ahead=600,
        max_token_ttl=3600,
    )


async def test_client_authentication_never_reads_the_store(
    settings: Settings,
) -> None:
    secret = await register(settings, "known")
    app = build_app(settings, background=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.starlette.router.lifespan_context(app.starlette),
        httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http,
    ):
        # From here on, any read of the clients table fails the test.
        app.state.runtime.clients._source = FailingStore()
        form = {"grant_type": "client_credentials"}

        known = await http.post(
            "/oauth2/token", data=form, headers=basic("known", secret)
        )
        wrong = await http.post("/oauth2/token", data=form, headers=basic("known", "x"))
        unknown = await http.post(
            "/oauth2/token", data=form, headers=basic("ghost", "x")
        )

        assert known.status_code == 200
        # Unknown and wrong-secret clients: the same work (a memory lookup and
        # an HMAC), and the same bytes.
        assert (wrong.status_code, unknown.status_code) == (401, 401)
        assert wrong.content == unknown.content
        assert wrong.headers == unknown.headers


async def test_rotation_publishes_before_signing(settings: Settings) -> None:
    clock = Clock()
    secret = await register(settings, "rotating")
    app = build_app(settings, clock=clock, background=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.starlette.router.lifespan_context(app.starlette),
        httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http,
    ):
        runtime = app.state.runtime

        async def signing_kid() -> str:
            response = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers=basic("rotating", secret),
            )
            return str(
                jwt.get_unverified_header(response.json()["access_token"])["kid"]
            )

        async def published() -> list[str]:
            keys = (await http.get("/oauth2/jwks")).json()["keys"]
            # The RS256 key that signs ID tokens is published beside them.
            return [key["kid"] for key in keys if key["alg"] == "ES256"]

        first = await signing_kid()
        assert await published() == [first]

        runtime.keys._clock = clock
        new = await runtime.keys.rotate("ES256")
        await runtime.refresh()
        # Published at once, but the old key signs until publish_ahead passes.
        assert await published() == [first, new]
        assert await signing_kid() == first

        clock.now += 600
        # A running node refreshes every second; past store_outage_grace
        # without one, it would stop issuing (see test_store_outage_*).
        await runtime.refresh()
        assert await signing_kid() == new
        assert await published() == [first, new]

        # The old key's last token expires max_token_ttl after it stopped.
        clock.now += 3600
        assert await published() == [new]
        assert await runtime.keys.prune() == [first]


async def test_client_changes_reach_the_node(settings: Settings) -> None:
    secret = await register(settings, "changing")
    app = build_app(settings, background=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.starlette.router.lifespan_context(app.starlette),
        httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http,
    ):
        runtime = app.state.runtime
        form = {"grant_type": "client_credentials"}
        ok = await http.post(
            "/oauth2/token", data=form, headers=basic("changing", secret)
        )
        assert ok.status_code == 200

        # Another process (here: the operator API the CLI uses) disables it.
        async with operator(settings) as op:
            record = await op.clients.record("changing")
            await op.clients.save(dataclasses.replace(record.client, disabled=True))
        await runtime.refresh()

        refused = await http.post(
            "/oauth2/token", data=form, headers=basic("changing", secret)
        )
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"


async def test_store_outage_grace_bounds_issuance_from_memory(
    settings: Settings,
) -> None:
    clock = Clock()
    secret = await register(settings, "cached")
    settings = settings.model_copy(update={"store_outage_grace": 30.0})
    app = build_app(settings, clock=clock, background=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.starlette.router.lifespan_context(app.starlette),
        httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http,
    ):
        runtime = app.state.runtime
        form = {"grant_type": "client_credentials"}

        async def issue() -> httpx.Response:
            return await http.post(
                "/oauth2/token", data=form, headers=basic("cached", secret)
            )

        # The store stops answering: the cached client is served for the
        # grace period after the last successful refresh, and no longer.
        runtime.clients._source = FailingStore()
        clock.now += 30
        assert (await issue()).status_code == 200

        clock.now += 1
        refused = await issue()
        assert refused.status_code == 503
        assert refused.json()["error"] == "temporarily_unavailable"
        assert refused.headers["retry-after"] == "5"
        assert refused.headers["cache-control"] == "no-store"

        # A refresh that reaches the store ends the outage.
        await runtime.refresh()
        assert (await issue()).status_code == 200
