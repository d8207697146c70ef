"""When the store cannot answer, the server says so (503) rather than guess."""

from __future__ import annotations

import sqlite3

import httpx

from tests.server.helpers import assert_error, basic, issue_token
from tests.support import RunningServer

UNAVAILABLE = "The service is temporarily unavailable."


def drop_table(server: RunningServer, table: str) -> None:
    with sqlite3.connect(server.data_dir / "tessera.db") as db:
        db.execute(f"DROP TABLE {table}")


def test_store_failure_is_503_with_retry_after(fresh_server: RunningServer) -> None:
    server = fresh_server
    owner_secret = server.create_client("owner")
    newcomer_secret = server.create_client("newcomer")
    with httpx.Client(base_url=server.base_url) as http:
        token = issue_token(http, "owner", owner_secret)
        drop_table(server, "revoked_tokens")
        drop_table(server, "clients")

        # Revocation state unknown: the token is neither active nor inactive.
        introspected = http.post(
            "/oauth2/introspect",
            data={"token": token},
            headers={"Authorization": basic("owner", owner_secret)},
        )
        # Revoking must be recorded, so it cannot succeed either.
        revoked = http.post(
            "/oauth2/revoke",
            data={"token": token},
            headers={"Authorization": basic("owner", owner_secret)},
        )
        # Issuance needs no store: clients are held in memory, and the node
        # keeps its last snapshot while the store is down.
        issued = http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic("newcomer", newcomer_secret)},
        )

    for response in (introspected, revoked):
        assert_error(response, 503, "temporarily_unavailable", UNAVAILABLE)
        assert response.headers["retry-after"] == "5"
    assert issued.status_code == 200
