"""Refresh tokens (RFC 6749 §6): rotation on every use, reuse detection
with a grace window (RFC 9700 §4.14.2), scope narrowing, revocation and
introspection, over HTTP against a real server."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tessera.core.refresh import RefreshTokenRecord
from tessera.node import open_node
from tessera.store.refresh_tokens import RefreshTokenRepository
from tests.server.delegation import (
    RelyingParty,
    create_person,
    introspect,
    refresh,
    register,
    set_disabled,
    sign_in,
    verify_id_token,
)
from tests.server.helpers import assert_error, assert_no_store, verify
from tests.support import RunningServer, running, within

GRANT_INVALID = "The grant is invalid."
# Short, so that a test can wait it out.
GRACE = 2
REUSED_EVENT = '"reason":"refresh token reused"'


@pytest.fixture(scope="module")
def graced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from running(
        tmp_path_factory.mktemp("refresh"),
        TESSERA_REFRESH_REUSE_GRACE=str(GRACE),
    )


@pytest.fixture(scope="module")
def http(graced: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=graced.base_url) as client:
        yield client


@pytest.fixture(scope="module")
def rp(graced: RunningServer) -> RelyingParty:
    return register(graced, "refresh-rp")


@pytest.fixture(scope="module")
def person(graced: RunningServer) -> str:
    return create_person(graced)


@pytest.fixture
def tokens(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> dict[str, Any]:
    return sign_in(graced, http, rp, person, nonce="n-0S6_WzA2Mj")


def rotate(http: httpx.Client, rp: RelyingParty, token: str, **form: str) -> Any:
    response = refresh(http, rp, token, **form)
    assert response.status_code == 200, response.text
    return response.json()


def assert_refused(response: httpx.Response) -> None:
    assert_error(response, 400, "invalid_grant", GRANT_INVALID)


def test_a_refresh_rotates_the_token_and_issues_new_ones(
    graced: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    tokens: dict[str, Any],
) -> None:
    response = refresh(http, rp, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert body.keys() == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
        "refresh_token",
        "id_token",
    }
    assert body["refresh_token"].startswith("trt_")
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["scope"] == tokens["scope"]
    _, access = verify(http, body["access_token"])
    _, first = verify(http, tokens["access_token"])
    assert access["sub"] == person
    assert access["jti"] != first["jti"]
    assert access["auth_time"] == first["auth_time"]
    # OIDC Core §12.2: same person and client, the original auth_time, and
    # no nonce (there was no authorization request this time).
    _, id_claims = verify_id_token(http, body["id_token"], rp.client_id)
    _, first_id = verify_id_token(http, tokens["id_token"], rp.client_id)
    for claim in ("iss", "sub", "aud", "azp", "auth_time"):
        assert id_claims[claim] == first_id[claim], claim
    assert id_claims["sub"] == person
    assert id_claims["azp"] == rp.client_id
    assert id_claims["auth_time"] == first["auth_time"]
    assert "nonce" not in id_claims
    # The successor rotates in turn.
    assert rotate(http, rp, body["refresh_token"])["refresh_token"]


def test_a_reuse_within_the_grace_window_gets_a_token_of_the_same_family(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    """Two tabs refreshing at once, or a response lost on the way."""
    first = rotate(http, rp, tokens["refresh_token"])
    again = rotate(http, rp, tokens["refresh_token"])

    assert again["refresh_token"] != first["refresh_token"]
    # Both successors are alive: one family, two branches.
    rotate(http, rp, first["refresh_token"])
    rotate(http, rp, again["refresh_token"])


def test_two_parallel_refreshes_within_the_grace_window_both_succeed(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    async def both() -> list[httpx.Response]:
        headers, fields = rp.credentials()
        form = {
            **fields,
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        }
        async with httpx.AsyncClient(base_url=graced.base_url) as client:
            return await asyncio.gather(
                *[
                    client.post("/oauth2/token", data=form, headers=headers)
                    for _ in range(2)
                ]
            )

    responses = asyncio.run(both())

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 2
    for successor in successors:
        rotate(http, rp, successor)


def test_a_reuse_after_the_grace_window_revokes_the_family(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    """RFC 9700 §4.14.2: the rotated token is in two hands; which is the
    thief's is unknown, so both lose the grant."""
    successor = rotate(http, rp, tokens["refresh_token"])["refresh_token"]
    time.sleep(GRACE + 1.1)

    reused = refresh(http, rp, tokens["refresh_token"])

    assert_refused(reused)
    assert_refused(refresh(http, rp, successor))
    # Audit events are written a moment later, by the audit writer.
    within(2, lambda: any(REUSED_EVENT in line for line in graced.audit_lines()))
    # Neither token appears in the audit log.
    log = "\n".join(graced.audit_lines())
    assert tokens["refresh_token"] not in log
    assert successor not in log


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        pytest.param("openid read", "openid read", id="narrower"),
        pytest.param("read", "read", id="without openid: no ID token"),
        pytest.param("read read", "read", id="repeated scope token"),
    ],
)
def test_the_scope_may_narrow(
    graced: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    tokens: dict[str, Any],
    requested: str,
    granted: str,
) -> None:
    body = rotate(http, rp, tokens["refresh_token"], scope=requested)

    assert body["scope"] == granted
    _, access = verify(http, body["access_token"])
    assert access["scope"] == granted
    assert ("id_token" in body) == ("openid" in granted.split())
    # RFC 6749 §6: the new refresh token keeps the whole original grant.
    assert rotate(http, rp, body["refresh_token"])["scope"] == tokens["scope"]


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("openid read write", id="a scope the client has"),
        pytest.param("admin", id="a scope nobody has"),
    ],
)
def test_the_scope_may_not_widen(
    graced: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    tokens: dict[str, Any],
    requested: str,
) -> None:
    response = refresh(http, rp, tokens["refresh_token"], scope=requested)

    assert_error(
        response,
        400,
        "invalid_scope",
        "The scope may not exceed the one originally granted.",
    )
    # Refused before rotation: the token still works.
    rotate(http, rp, tokens["refresh_token"])


def test_revoking_a_refresh_token_revokes_its_family(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    successor = rotate(http, rp, tokens["refresh_token"])["refresh_token"]

    response = rp.post(
        http, "/oauth2/revoke", token=successor, token_type_hint="refresh_token"
    )

    assert response.status_code == 200
    assert response.content == b""
    assert_refused(refresh(http, rp, successor))
    # Within the grace window, yet refused: the family is gone.
    assert_refused(refresh(http, rp, tokens["refresh_token"]))


def test_a_public_client_revokes_its_refresh_token(
    graced: RunningServer, http: httpx.Client, person: str
) -> None:
    spa = register(graced, "refresh-spa", public=True)
    body = sign_in(graced, http, spa, person)

    response = spa.post(http, "/oauth2/revoke", token=body["refresh_token"])

    assert response.status_code == 200
    assert_refused(refresh(http, spa, body["refresh_token"]))


def test_another_client_can_neither_use_nor_revoke_a_refresh_token(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    other = register(graced, "refresh-other")

    used = refresh(http, other, tokens["refresh_token"])
    revoked = other.post(http, "/oauth2/revoke", token=tokens["refresh_token"])
    seen = introspect(http, graced, other.client_id, tokens["refresh_token"])

    assert_refused(used)
    assert_error(
        revoked, 400, "invalid_request", "The token was not issued to this client."
    )
    assert seen == {"active": False}
    # None of it touched the token.
    rotate(http, rp, tokens["refresh_token"])


def test_introspection_shows_a_refresh_token_until_it_is_rotated(
    graced: RunningServer,
    http: httpx.Client,
    rp: RelyingParty,
    person: str,
    tokens: dict[str, Any],
) -> None:
    before = introspect(http, graced, rp.client_id, tokens["refresh_token"])
    rotate(http, rp, tokens["refresh_token"])
    after = introspect(http, graced, rp.client_id, tokens["refresh_token"])

    assert before["active"] is True
    assert before["client_id"] == rp.client_id
    assert before["sub"] == person
    assert before["scope"] == tokens["scope"]
    assert before["exp"] - before["iat"] == 30 * 86400
    assert after == {"active": False}


def test_a_disabled_persons_refresh_token_is_refused(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty
) -> None:
    person = create_person(graced)
    body = sign_in(graced, http, rp, person)
    set_disabled(graced, person, True)

    assert_refused(refresh(http, rp, body["refresh_token"]))

    set_disabled(graced, person, False)
    rotate(http, rp, body["refresh_token"])


def test_an_expired_refresh_token_is_refused(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, person: str
) -> None:
    token = "trt_" + secrets.token_urlsafe(32)
    now = int(time.time())

    async def store() -> None:
        node = await open_node(graced.settings, time.time)
        try:
            await RefreshTokenRepository(node.sessions).add(
                token,
                RefreshTokenRecord(
                    family_id=secrets.token_urlsafe(24),
                    client_id=rp.client_id,
                    user_id=person,
                    scope="openid read",
                    auth_time=now - 100,
                    issued_at=now - 100,
                    expires_at=now - 1,
                ),
            )
        finally:
            await node.close()

    asyncio.run(store())

    assert_refused(refresh(http, rp, token))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("trt_" + "A" * 43, id="well-formed, never issued"),
        pytest.param("trt_short", id="malformed"),
        pytest.param("x" * 5000, id="long junk"),
    ],
)
def test_an_unknown_refresh_token_is_refused(
    http: httpx.Client, rp: RelyingParty, token: str
) -> None:
    assert_refused(refresh(http, rp, token))


def test_the_refresh_token_parameter_is_required(
    http: httpx.Client, rp: RelyingParty
) -> None:
    response = rp.post(http, "/oauth2/token", grant_type="refresh_token")

    assert_error(
        response, 400, "invalid_request", "The refresh_token parameter is missing."
    )


def test_a_client_without_the_refresh_grant_cannot_refresh(
    graced: RunningServer, http: httpx.Client, rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    code_only = register(
        graced, "no-refresh", grant_types=frozenset({"authorization_code"})
    )

    response = refresh(http, code_only, tokens["refresh_token"])

    assert_error(
        response, 400, "unauthorized_client", "The client may not use this grant type."
    )


def test_refresh_tokens_are_stored_as_hashes_only(
    graced: RunningServer, tokens: dict[str, Any]
) -> None:
    # SQLite in WAL mode: recent writes may still be in the log file.
    database = b"".join(
        path.read_bytes() for path in graced.data_dir.glob("tessera.db*")
    )
    assert database

    assert tokens["refresh_token"].encode() not in database
    assert tokens["refresh_token"][4:].encode() not in database
