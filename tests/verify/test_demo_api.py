"""The demo API's life cycle: its verifier's HTTP client closes on shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tessera.demo.api import build_demo_api
from tessera.verify import Verifier

from .conftest import AUDIENCE, IssuerState, Keys, claims, mint


async def run_lifespan(app: Any) -> list[str]:
    """Start and stop ``app`` through the ASGI lifespan protocol."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    task = asyncio.create_task(app({"type": "lifespan"}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    return sent


async def test_shutdown_closes_the_verifier_client(
    issuer: IssuerState, keys: Keys
) -> None:
    verifier = Verifier(issuer.base, AUDIENCE)
    app = build_demo_api(verifier)
    token = mint(keys["ES256"], claims(iss=issuer.base, exp=2**40, iat=0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(
            "/hello", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200
    http = verifier._http
    assert http is not None and not http.is_closed

    sent = await run_lifespan(app)

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert http.is_closed
    assert verifier._http is None


async def test_a_client_passed_in_is_left_open(issuer: IssuerState) -> None:
    async with httpx.AsyncClient() as http:
        verifier = Verifier(issuer.base, AUDIENCE, http=http)

        await run_lifespan(build_demo_api(verifier))

        assert not http.is_closed
