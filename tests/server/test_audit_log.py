"""What the server writes to its log: structured audit events, and never a
secret or a token."""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import httpx

from tests.server.helpers import basic, issue_token, unique, verify
from tests.support import RunningServer

# A compact JWS, and a Tessera client secret, wherever they appear.
JWT_SHAPE = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]*")
SECRET_SHAPE = re.compile(r"tsec_[0-9A-Za-z]{49}")


def audit_events(server: RunningServer, client_id: str) -> list[dict[str, Any]]:
    events = []
    for line in server.audit_lines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("client_id") == client_id:
            events.append(event)
    return events


def wait_for_events(
    server: RunningServer, client_id: str, count: int
) -> list[dict[str, Any]]:
    """The client's audit events once ``count`` have been written: the audit
    writer runs off the request path."""
    deadline = time.monotonic() + 5
    while True:
        events = audit_events(server, client_id)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def without_time(event: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(event["ts"], float | int)
    return {name: value for name, value in event.items() if name != "ts"}


def test_log_has_audit_events_and_no_secret_or_token(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("audited")
    secret = server.create_client(client_id)
    wrong = "tsec_" + secrets.token_urlsafe(36)
    by_basic = issue_token(http, client_id, secret)
    by_post = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
    ).json()["access_token"]
    denied_basic = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(client_id, wrong)},
    )
    denied_post = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": wrong,
        },
    )
    introspected = http.post(
        "/oauth2/introspect",
        data={"token": by_basic},
        headers={"Authorization": basic(client_id, secret)},
    )
    revoked = http.post(
        "/oauth2/revoke",
        data={"token": by_post},
        headers={"Authorization": basic(client_id, secret)},
    )
    assert [denied_basic.status_code, denied_post.status_code] == [401, 401]
    assert [introspected.status_code, revoked.status_code] == [200, 200]

    events = wait_for_events(server, client_id, 5)

    header, claims = verify(http, by_basic)
    issued = {
        "event": "token.issued",
        "client_id": client_id,
        "grant_type": "client_credentials",
        "jti": claims["jti"],
        "kid": header["kid"],
        "scope": "read write",
        "audience": ["https://api.example.test"],
        "expires_in": 900,
    }
    denied = {
        "event": "token.denied",
        "client_id": client_id,
        "error": "invalid_client",
        "reason": "wrong secret",
        "authentication_failed": True,
    }
    assert [without_time(event) for event in events] == [
        issued,
        {**issued, "jti": verify(http, by_post)[1]["jti"]},
        denied,
        denied,
        {"event": "token.revoked", "client_id": client_id},
    ]

    log = "\n".join(server.audit_lines())
    for value in [by_basic, by_post, secret, wrong, *server.secrets.values()]:
        assert value not in log
    assert JWT_SHAPE.search(log) is None
    assert SECRET_SHAPE.search(log) is None
