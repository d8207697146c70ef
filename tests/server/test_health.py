"""Liveness (``/healthz``) and readiness (``/readyz``): the first says the
process answers, the second that its database does too."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from tessera.config import Settings
from tessera.server.app import build_app
from tessera.server.runtime import Runtime

READY = {"status": "ready"}
UNAVAILABLE = {"status": "unavailable", "reason": "database"}


def test_healthz_says_the_process_answers(http: httpx.Client) -> None:
    response = http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_says_ready_when_the_database_answers(http: httpx.Client) -> None:
    response = http.get("/readyz")

    assert response.status_code == 200
    assert response.json() == READY
    assert response.headers["cache-control"] == "no-store"


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"


# In-process, so that the store can fail for this node alone, without
# stopping a database that other tests share.


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        issuer="http://tessera.test",
        audit_log=str(tmp_path / "audit.jsonl"),
    )


@contextlib.asynccontextmanager
async def node(settings: Settings) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    app = build_app(settings, background=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.starlette.router.lifespan_context(app.starlette),
        httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as http,
    ):
        yield app.state.runtime, http


async def test_readyz_is_503_while_the_database_is_unreachable(
    settings: Settings, tmp_path: Path
) -> None:
    async with node(settings) as (runtime, http):
        # SQLite cannot open a file in a directory that does not exist.
        unreachable = create_async_engine(
            f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'tessera.db'}"
        )
        working, runtime.node.engine = runtime.node.engine, unreachable
        try:
            down = await http.get("/readyz")
            alive = await http.get("/healthz")
        finally:
            runtime.node.engine = working
            await unreachable.dispose()
        back = await http.get("/readyz")

    assert_unavailable(down)
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert (back.status_code, back.json()) == (200, READY)


@pytest.mark.parametrize(
    "error",
    [
        # What check_store raises when the database takes over two seconds.
        TimeoutError(),
        OperationalError("SELECT 1", {}, Exception("connection refused")),
        ConnectionRefusedError(),
        RuntimeError("a bug"),
    ],
    ids=["timeout", "sqlalchemy", "os-error", "bug"],
)
async def test_readyz_is_never_a_500(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    async def failing() -> None:
        raise error

    async with node(settings) as (runtime, http):
        monkeypatch.setattr(runtime, "check_store", failing)
        response = await http.get("/readyz")

    assert_unavailable(response)
