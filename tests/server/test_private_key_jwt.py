"""private_key_jwt (RFC 7523 §2.2) over HTTP, against real servers: keys
inline or at a jwks_uri, the three endpoints that authenticate clients,
replays refused on one node and across nodes, and Authlib as the client."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization

from tessera.keys import master
from tessera.store import database
from tessera.store.used_assertions import UsedAssertionRepository
from tests.client_keys import (
    ASSERTION_TYPE,
    KeyPair,
    alg_none,
    claims_for,
    hs256_with,
    jwks,
    make_key,
)
from tests.server.helpers import (
    AUTH_FAILED,
    BASIC_CHALLENGE,
    assert_error,
    basic,
    unique,
    verify,
)
from tests.support import RunningServer, free_port, start_server

with warnings.catch_warnings():
    # Authlib's notice about its own move from httpx; see test_interop.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

KEY = make_key("ES256", "k1")
SECOND = make_key("EdDSA", "k2")
# Not the client's: same kid as its key, or a kid of its own.
STRANGER = make_key("ES256", "k1", number=1)
UNLISTED = make_key("ES256", "unlisted", number=2)

SHARED_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
NODES_ISSUER = "https://tessera.nodes.test"
UNAVAILABLE = "The service is temporarily unavailable."
SAML_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"


def token_endpoint(server: RunningServer) -> str:
    return server.env["TESSERA_ISSUER"] + "/oauth2/token"


def assertion_for(
    server: RunningServer, client_id: str, pair: KeyPair = KEY, **changes: Any
) -> str:
    claims = claims_for(client_id, token_endpoint(server), time.time(), **changes)
    return pair.sign(claims)


def with_assertion(
    assertion: str, client_id: str | None = None, **form: str
) -> dict[str, str]:
    fields = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    if client_id is not None:
        fields["client_id"] = client_id
    return {**fields, **form}


def token(http: httpx.Client, fields: dict[str, str]) -> httpx.Response:
    return http.post(
        "/oauth2/token", data={"grant_type": "client_credentials", **fields}
    )


class JwksHost:
    """A JWK Set served on loopback, the way a client publishes its keys;
    counts the requests it answers."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.requests = 0
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests += 1
                body = json.dumps(host.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/jwks.json"

    def __enter__(self) -> JwksHost:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def key_client(server: RunningServer) -> str:
    """A private_key_jwt client of its own for each test: refusals count
    towards a client id's lockout."""
    client_id = unique("pkjwt")
    server.create_key_client(client_id, jwks=jwks(KEY, SECOND))
    return client_id


# Accepted.


@pytest.mark.parametrize("pair", [KEY, SECOND], ids=["ES256", "EdDSA"])
def test_a_key_client_gets_a_token_with_an_assertion(
    server: RunningServer, http: httpx.Client, key_client: str, pair: KeyPair
) -> None:
    response = token(
        http, with_assertion(assertion_for(server, key_client, pair), key_client)
    )

    assert response.status_code == 200, response.text
    claims = verify(http, response.json()["access_token"])[1]
    assert (claims["sub"], claims["client_id"]) == (key_client, key_client)


def test_the_client_id_may_come_from_the_assertion_alone(
    server: RunningServer, http: httpx.Client, key_client: str
) -> None:
    response = token(http, with_assertion(assertion_for(server, key_client)))

    assert response.status_code == 200, response.text
    assert verify(http, response.json()["access_token"])[1]["sub"] == key_client


def test_introspection_and_revocation_accept_an_assertion(
    server: RunningServer, http: httpx.Client, key_client: str
) -> None:
    issued = token(http, with_assertion(assertion_for(server, key_client)))
    access_token = issued.json()["access_token"]

    def call(path: str) -> httpx.Response:
        assertion = assertion_for(server, key_client, aud=server.base_url)
        return http.post(path, data=with_assertion(assertion, token=access_token))

    before = call("/oauth2/introspect")
    revoked = call("/oauth2/revoke")
    after = call("/oauth2/introspect")

    assert before.status_code == 200 and before.json()["active"] is True
    assert before.json()["client_id"] == key_client
    assert (revoked.status_code, revoked.content) == (200, b"")
    assert after.json() == {"active": False}


def test_a_jwks_uri_is_fetched_once_for_many_requests(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("pkjwt-uri")
    with JwksHost(jwks(KEY)) as host:
        server.create_key_client(client_id, jwks_uri=host.url)

        responses = [
            token(http, with_assertion(assertion_for(server, client_id), client_id))
            for _ in range(10)
        ]
        introspected = http.post(
            "/oauth2/introspect",
            data=with_assertion(assertion_for(server, client_id), token="x"),
        )

    assert [r.status_code for r in responses] == [200] * 10
    assert introspected.json() == {"active": False}
    assert host.requests == 1


# Refused.


@dataclass(frozen=True)
class Case:
    """How an assertion breaks the rules, given the server and client."""

    make: Callable[[RunningServer, str], str]


REFUSED = [
    pytest.param(
        Case(lambda s, c: assertion_for(s, c, aud=s.base_url + "/oauth2/revoke")),
        id="wrong aud",
    ),
    pytest.param(
        Case(lambda s, c: assertion_for(s, c, exp=int(time.time()) - 60)),
        id="expired",
    ),
    pytest.param(
        Case(lambda s, c: assertion_for(s, c, exp=int(time.time()) + 3600)),
        id="lives an hour",
    ),
    pytest.param(Case(lambda s, c: assertion_for(s, c, jti=None)), id="no jti"),
    pytest.param(
        Case(
            lambda s, c: alg_none(claims_for(c, token_endpoint(s), time.time()), b"x")
        ),
        id="alg none",
    ),
    pytest.param(
        Case(
            lambda s, c: hs256_with(
                KEY.public_pem(),
                claims_for(c, token_endpoint(s), time.time()),
                kid="k1",
            )
        ),
        id="HS256 keyed with the public key",
    ),
    pytest.param(
        Case(lambda s, c: assertion_for(s, c, STRANGER)),
        id="another key under the client's kid",
    ),
    pytest.param(
        Case(lambda s, c: assertion_for(s, c, UNLISTED)),
        id="a key not in the client's set",
    ),
    pytest.param(
        Case(lambda s, c: assertion_for(s, c, iss="someone-else")),
        id="iss not the client",
    ),
]


@pytest.mark.parametrize("case", REFUSED)
def test_an_assertion_breaking_a_rule_is_invalid_client(
    server: RunningServer, http: httpx.Client, key_client: str, case: Case
) -> None:
    response = token(http, with_assertion(case.make(server, key_client), key_client))

    assert_error(response, 401, "invalid_client", AUTH_FAILED)
    assert "www-authenticate" not in response.headers


def test_a_replayed_assertion_is_invalid_client(
    server: RunningServer, http: httpx.Client, key_client: str
) -> None:
    assertion = assertion_for(server, key_client)

    first = token(http, with_assertion(assertion, key_client))
    again = token(http, with_assertion(assertion, key_client))
    # Also at another endpoint: the jti is the client's, wherever it is sent.
    elsewhere = http.post(
        "/oauth2/introspect", data=with_assertion(assertion, token="x")
    )

    assert first.status_code == 200, first.text
    assert_error(again, 401, "invalid_client", AUTH_FAILED)
    assert_error(elsewhere, 401, "invalid_client", AUTH_FAILED)


def test_no_key_is_fetched_from_a_jku_header(
    server: RunningServer, http: httpx.Client, key_client: str
) -> None:
    with JwksHost(jwks(STRANGER)) as elsewhere:
        assertion = assertion_for(server, key_client, STRANGER)
        forged = STRANGER.sign(
            claims_for(key_client, token_endpoint(server), time.time()),
            jku=elsewhere.url,
        )
        responses = [
            token(http, with_assertion(a, key_client)) for a in (assertion, forged)
        ]

    for response in responses:
        assert_error(response, 401, "invalid_client", AUTH_FAILED)
    assert elsewhere.requests == 0


def test_a_secret_client_cannot_use_an_assertion(
    server: RunningServer, http: httpx.Client
) -> None:
    client_id = unique("secret-client")
    server.create_client(client_id)

    response = token(http, with_assertion(assertion_for(server, client_id)))

    assert_error(response, 401, "invalid_client", AUTH_FAILED)


def test_a_key_client_cannot_use_a_secret(
    server: RunningServer, http: httpx.Client, key_client: str
) -> None:
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(key_client, "tsec_guess")},
    )

    assert_error(response, 401, "invalid_client", AUTH_FAILED)
    assert response.headers["www-authenticate"] == BASIC_CHALLENGE


@pytest.mark.parametrize(
    ("extra", "headers", "description"),
    [
        pytest.param(
            {"client_secret": "s"},
            {},
            "Use one client authentication method, not two.",
            id="and a client_secret",
        ),
        pytest.param(
            {},
            {"Authorization": basic("x", "s")},
            "Use one client authentication method, not two.",
            id="and Basic",
        ),
        pytest.param(
            {"client_assertion_type": SAML_ASSERTION_TYPE},
            {},
            "The client_assertion_type is not supported.",
            id="SAML assertion type",
        ),
    ],
)
def test_one_method_and_one_assertion_type(
    server: RunningServer,
    http: httpx.Client,
    key_client: str,
    extra: dict[str, str],
    headers: dict[str, str],
    description: str,
) -> None:
    fields = with_assertion(assertion_for(server, key_client), key_client)
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **fields, **extra},
        headers=headers,
    )

    assert_error(response, 400, "invalid_request", description)


def test_the_assertion_never_reaches_the_log(
    server: RunningServer, http: httpx.Client, key_client: str
) -> None:
    assertion = assertion_for(server, key_client)
    token(http, with_assertion(assertion, key_client))
    token(http, with_assertion(assertion, key_client))
    token(http, with_assertion(assertion))
    time.sleep(0.3)  # the audit writer flushes every 50 ms

    log = server.log_path.read_text()
    assert key_client in log
    for part in assertion.split("."):
        assert part not in log


# Authlib as the client.


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's private_key_jwt with a one-minute assertion. Its default is
    an hour, which Tessera refuses (see the test); and its ``claims`` dict
    gets the jti written into it, so each assertion gets a new dict."""

    def sign(self, auth: Any, token_endpoint: str) -> Any:
        self.claims = {"exp": int(time.time()) + 60}
        return super().sign(auth, token_endpoint)


def test_authlib_private_key_jwt_interoperates(server: RunningServer) -> None:
    pair = make_key("RS256", kid=None, number=5)
    client_id = unique("authlib-pkjwt")
    server.create_key_client(client_id, jwks=jwks(pair))
    private_pem = pair.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    token_url = server.url("/oauth2/token")

    def session(method: PrivateKeyJWT) -> OAuth2Client:
        client = OAuth2Client(
            client_id, private_pem, token_endpoint_auth_method="private_key_jwt"
        )
        client.register_client_auth_method(method)
        return client

    with (
        session(PrivateKeyJWT(token_url)) as hour_long,
        pytest.raises(OAuthError) as refused,
    ):
        hour_long.fetch_token(token_url, grant_type="client_credentials")
    with session(ShortLivedPrivateKeyJWT(token_url)) as client:
        issued = [
            client.fetch_token(token_url, grant_type="client_credentials")
            for _ in range(2)
        ]
        introspected = client.introspect_token(
            server.url("/oauth2/introspect"), token=issued[0]["access_token"]
        )

    assert refused.value.error == "invalid_client"
    assert [t["token_type"] for t in issued] == ["Bearer", "Bearer"]
    assert introspected.json()["active"] is True


# Replays across nodes, and stores that fail.


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {error}")


async def _admin(url: str, statement: str) -> Any:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return await connection.fetchval(statement)
    finally:
        await connection.close()


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A PostgreSQL database of the test's own on the shared server."""
    name = f"tessera_pkjwt_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f"{SHARED_POSTGRES}/test", f'CREATE DATABASE "{name}"'))
    except OSError as error:
        pytest.skip(f"PostgreSQL at {SHARED_POSTGRES} is unreachable: {error}")
    yield f"{SHARED_POSTGRES}/{name}"
    asyncio.run(
        _admin(f"{SHARED_POSTGRES}/test", f'DROP DATABASE "{name}" WITH (FORCE)')
    )


@pytest.mark.parametrize("with_redis", [False, True], ids=["database", "redis"])
def test_a_replay_is_refused_by_every_node(
    tmp_path: Path, shared_database: str, with_redis: bool
) -> None:
    """With or without Redis, used assertions are kept in the database."""
    env = {
        "TESSERA_DATABASE_URL": shared_database,
        "TESSERA_MASTER_KEY": master.generate(),
        "TESSERA_ISSUER": NODES_ISSUER,
    }
    if with_redis:
        redis_or_skip()
        env["TESSERA_REDIS_URL"] = REDIS_URL
    with ThreadPoolExecutor(2) as pool:
        nodes = list(
            pool.map(lambda n: start_server(tmp_path / f"node{n}", **env), (0, 1))
        )
    try:
        client_id = unique("pkjwt-nodes")
        marker = nodes[0].create_key_client(client_id, jwks=jwks(KEY))
        nodes[1].wait_until_known(marker, nodes[0].secrets[marker], disabled=False)

        jtis = []
        for first, second in (nodes, nodes[::-1]):
            jti = secrets.token_urlsafe(16)
            jtis.append(jti)
            assertion = assertion_for(first, client_id, jti=jti)
            with httpx.Client(base_url=first.base_url) as one:
                accepted = token(one, with_assertion(assertion, client_id))
            with httpx.Client(base_url=second.base_url) as other:
                replayed = token(other, with_assertion(assertion, client_id))

            assert accepted.status_code == 200, accepted.text
            assert_error(replayed, 401, "invalid_client", AUTH_FAILED)
    finally:
        for node in nodes:
            node.stop()

    rows = asyncio.run(_admin(shared_database, "SELECT count(*) FROM used_assertions"))
    assert rows == len(jtis) == 2


def drop_used_assertions(server: RunningServer) -> None:
    with sqlite3.connect(server.data_dir / "tessera.db") as db:
        db.execute("DROP TABLE used_assertions")


@pytest.mark.parametrize("redis_down", [False, True], ids=["no redis", "redis down"])
def test_no_assertion_is_accepted_unchecked_when_the_stores_fail(
    tmp_path: Path, redis_down: bool
) -> None:
    env = {"TESSERA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    server = start_server(tmp_path / "tessera", **(env if redis_down else {}))
    try:
        client_id = unique("pkjwt-down")
        server.create_key_client(client_id, jwks=jwks(KEY))
        drop_used_assertions(server)

        with httpx.Client(base_url=server.base_url) as http:
            response = token(
                http, with_assertion(assertion_for(server, client_id), client_id)
            )
    finally:
        server.stop()

    assert_error(response, 503, "temporarily_unavailable", UNAVAILABLE)
    assert response.headers["retry-after"] == "5"


# The replay stores themselves.


NOW = 1_700_000_000


async def test_the_database_remembers_a_jti_until_it_expires(tmp_path: Path) -> None:
    engine = database.create_engine(f"sqlite:///{tmp_path / 'tessera.db'}")
    try:
        await database.migrate(engine)
        used = UsedAssertionRepository(database.sessions(engine))

        assert await used.first_use("a" * 64, NOW + 60, NOW) is True
        assert await used.first_use("a" * 64, NOW + 90, NOW + 59) is False
        # Expired, though not purged yet: the jti may serve again.
        assert await used.first_use("a" * 64, NOW + 200, NOW + 60) is True
        assert await used.first_use("b" * 64, NOW + 10, NOW) is True

        assert await used.purge_expired(NOW + 100) == 1
        assert await used.first_use("a" * 64, NOW + 300, NOW + 100) is False
    finally:
        await engine.dispose()
