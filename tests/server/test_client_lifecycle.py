"""What disabling or deleting a client does to its tokens, seen through a
resource server's introspection."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import pytest

from tessera.cli.context import operator
from tests.server.helpers import basic, issue_token, unique
from tests.support import RunningServer

API = "https://lifecycle.example.test"


def disable(server: RunningServer, client_id: str) -> None:
    async def go() -> None:
        async with operator(server.settings) as op:
            record = await op.clients.record(client_id)
            await op.clients.save(dataclasses.replace(record.client, disabled=True))

    asyncio.run(go())


def delete(server: RunningServer, client_id: str) -> None:
    async def go() -> None:
        async with operator(server.settings) as op:
            await op.clients.delete(client_id)

    asyncio.run(go())


@pytest.mark.parametrize("change", [disable, delete], ids=["disabled", "deleted"])
def test_a_removed_client_gets_no_tokens_and_its_tokens_turn_inactive(
    server: RunningServer, http: httpx.Client, change: object
) -> None:
    owner = unique("leaving")
    owner_secret = server.create_client(owner, audiences=(API,))
    api = unique("api")
    api_secret = server.create_client(api, audiences=(API,), may_introspect=True)
    token = issue_token(http, owner, owner_secret)

    def introspect() -> httpx.Response:
        return http.post(
            "/oauth2/introspect",
            data={"token": token},
            headers={"Authorization": basic(api, api_secret)},
        )

    assert introspect().json()["active"] is True

    change(server, owner)  # type: ignore[operator]
    time.sleep(0.3)  # the server polls for changes every 0.05 s in tests

    refused = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(owner, owner_secret)},
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert introspect().content == b'{"active":false}'
