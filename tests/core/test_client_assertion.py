"""private_key_jwt (RFC 7523 §2.2, §3): reading the assertion from the
request, and every rule of its verification, with the time given."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tessera.core.client_assertion import (
    MAX_ASSERTION_BYTES,
    ClientAssertions,
    replay_key,
)
from tessera.core.client_auth import Credentials, authenticate, read_credentials
from tessera.core.clients import Client
from tessera.core.errors import InvalidClient, InvalidRequest, TemporarilyUnavailable
from tessera.core.form import Form
from tessera.core.limits import Guard, Lockout, RateLimits
from tessera.core.secrets import generate_secret, hash_secret
from tessera.federation.client_keys import ClientKeySources
from tessera.server.limits_local import LocalLimiter
from tests.client_keys import (
    ASSERTION_TYPE,
    KeyPair,
    alg_none,
    b64url,
    claims_for,
    hs256_with,
    jwks,
    make_key,
)
from tests.core.clients import Directory, make_client

NOW = 1_700_000_000
PEPPER = b"pepper".ljust(32, b"\0")
ISSUER = "https://as.example"
TOKEN_ENDPOINT = ISSUER + "/oauth2/token"
SECRET = generate_secret()

ES256 = make_key("ES256", "es")
SECOND = make_key("ES256", "es-2", number=1)
STRANGER = make_key("ES256", "es", number=2)


def key_client(client_id: str = "app", *pairs: KeyPair, **fields: Any) -> Client:
    return make_client(
        client_id=client_id,
        auth_method="private_key_jwt",
        jwks=json.dumps(jwks(*(pairs or (ES256, SECOND)))),
        **fields,
    )


CLIENTS = (
    key_client(),
    key_client("off", disabled=True),
    make_client(client_id="secret-app", secret_hash=hash_secret(PEPPER, SECRET)),
)


class Used:
    """Used assertions in memory, with the stores' contract."""

    def __init__(self) -> None:
        self.records: dict[str, int] = {}

    async def first_use(self, key: str, expires_at: int, now: int) -> bool:
        if self.records.get(key, now) > now:
            return False
        self.records[key] = expires_at
        return True

    async def close(self) -> None:
        pass


class Setup:
    def __init__(self, *clients: Client) -> None:
        self.used = Used()
        self.keys = ClientKeySources(lambda: NOW)
        self.assertions = ClientAssertions(ISSUER, self.keys, self.used)
        self.directory = Directory(*(clients or CLIENTS))

    async def attempt(
        self, assertion: str, client_id: str | None = None, now: float = NOW
    ) -> Client:
        fields = {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        if client_id is not None:
            fields["client_id"] = client_id
        credentials = read_credentials(None, form(**fields))
        return await authenticate(
            credentials, self.directory, PEPPER, now, self.assertions
        )

    async def refused(self, assertion: str, **options: Any) -> str:
        with pytest.raises(InvalidClient) as raised:
            await self.attempt(assertion, **options)
        assert raised.value.description == "Client authentication failed."
        assert raised.value.basic is False
        assert assertion not in raised.value.detail
        return raised.value.detail


def form(**fields: str) -> Form:
    return Form.parse(urlencode(fields).encode())


def claims(**changes: Any) -> dict[str, Any]:
    return claims_for("app", TOKEN_ENDPOINT, NOW, **changes)


# Reading the request.


def test_read_credentials_takes_the_client_id_from_the_form() -> None:
    assertion = ES256.sign(claims())
    credentials = read_credentials(
        None,
        form(
            client_id="app",
            client_assertion_type=ASSERTION_TYPE,
            client_assertion=assertion,
        ),
    )

    assert credentials == Credentials("app", "", "private_key_jwt", assertion)
    assert credentials.basic is False
    assert assertion not in repr(credentials)


def test_read_credentials_takes_the_client_id_from_the_assertion() -> None:
    assertion = ES256.sign(claims())
    credentials = read_credentials(
        None, form(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion)
    )

    assert credentials.client_id == "app"
    assert credentials.method == "private_key_jwt"


@pytest.mark.parametrize(
    ("assertion", "detail"),
    [
        pytest.param(
            ES256.sign(claims(iss="other")),
            "assertion iss is not its sub",
            id="sub differs from iss",
        ),
        pytest.param(
            ES256.sign(claims(sub=None)),
            "assertion sub missing or not a string",
            id="no sub",
        ),
        pytest.param(
            ES256.sign(claims(sub=7, iss=7)),
            "assertion sub missing or not a string",
            id="sub not a string",
        ),
        pytest.param(
            "not-a-jwt",
            "assertion: token does not have three segments",
            id="not a JWT",
        ),
        pytest.param(
            f"{b64url({'alg': 'ES256'})}.{b64url(b'[1]')}.c2ln",
            "assertion: assertion payload is not a JSON object",
            id="payload not an object",
        ),
        pytest.param(
            "a." * (MAX_ASSERTION_BYTES // 2) + "a",
            f"assertion: token longer than {MAX_ASSERTION_BYTES} bytes",
            id="over 8 KiB",
        ),
    ],
)
def test_read_credentials_refuses_an_assertion_naming_no_client(
    assertion: str, detail: str
) -> None:
    with pytest.raises(InvalidClient) as raised:
        read_credentials(
            None, form(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion)
        )

    assert raised.value.detail == detail


ASSERTION = ES256.sign(claims())


@pytest.mark.parametrize(
    ("authorization", "fields", "description"),
    [
        pytest.param(
            None,
            {"client_secret": "s", "client_id": "app"},
            "Use one client authentication method, not two.",
            id="with a client_secret",
        ),
        pytest.param(
            "Basic YXBwOnM=",
            {},
            "Use one client authentication method, not two.",
            id="with a Basic header",
        ),
        pytest.param(
            None,
            {"client_assertion_type": "urn:example:saml"},
            "The client_assertion_type is not supported.",
            id="another assertion type",
        ),
        pytest.param(
            None,
            {"client_assertion_type": None},
            "The client_assertion_type parameter is missing.",
            id="assertion without its type",
        ),
        pytest.param(
            None,
            {"client_assertion": None},
            "The client_assertion parameter is missing.",
            id="type without an assertion",
        ),
    ],
)
def test_read_credentials_refuses_as_invalid_request(
    authorization: str | None, fields: dict[str, str | None], description: str
) -> None:
    sent = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": ASSERTION}
    sent.update(fields)
    body = {name: value for name, value in sent.items() if value is not None}

    with pytest.raises(InvalidRequest) as raised:
        read_credentials(authorization, form(**body))

    assert type(raised.value) is InvalidRequest
    assert raised.value.description == description


def test_a_repeated_assertion_is_invalid_request() -> None:
    body = urlencode(
        [
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", ASSERTION),
            ("client_assertion", ASSERTION),
        ]
    )

    with pytest.raises(InvalidRequest, match="client_assertion parameter is repeated"):
        read_credentials(None, Form.parse(body.encode()))


# Verification: what is accepted.


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
async def test_each_allowed_algorithm_authenticates(alg: str) -> None:
    pair = make_key(alg, f"{alg}-key")
    setup = Setup(key_client("app", pair))

    client = await setup.attempt(pair.sign(claims()))

    assert client.client_id == "app"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="aud the token endpoint"),
        pytest.param({"aud": ISSUER}, id="aud the issuer"),
        pytest.param({"aud": ["https://elsewhere", ISSUER]}, id="aud list"),
        pytest.param({"iat": None, "nbf": NOW + 30}, id="nbf within leeway"),
        pytest.param({"iat": NOW + 30}, id="iat within leeway"),
        pytest.param({"exp": NOW - 29}, id="expired within leeway"),
        pytest.param({"exp": NOW + 630}, id="ten minutes and the leeway ahead"),
        pytest.param({"exp": NOW + 0.5}, id="fractional exp"),
        pytest.param({"jti": "j" * 256}, id="256-character jti"),
        pytest.param({"jti": "\ud800"}, id="jti with a lone surrogate"),
    ],
)
async def test_assertions_within_the_rules_authenticate(
    changes: dict[str, Any],
) -> None:
    setup = Setup()

    client = await setup.attempt(ES256.sign(claims(**changes)))

    assert client is CLIENTS[0]


async def test_the_kid_selects_among_the_clients_keys() -> None:
    setup = Setup()

    assert await setup.attempt(SECOND.sign(claims())) is CLIENTS[0]
    assert await setup.attempt(ES256.sign(claims())) is CLIENTS[0]


async def test_a_lone_key_needs_no_kid() -> None:
    pair = make_key("ES256", kid=None)
    setup = Setup(key_client("app", pair))

    assert await setup.attempt(pair.sign(claims()), client_id="app")


async def test_the_form_client_id_must_be_the_assertions() -> None:
    setup = Setup()

    detail = await setup.refused(
        ES256.sign(claims(iss="off", sub="off")), client_id="app"
    )

    assert detail == "assertion iss is not the client id"


# Verification: what is refused, and why (the detail stays private).


FORGED_KEY = make_key("ES256", "attacker", number=3)


@pytest.mark.parametrize(
    ("assertion", "detail"),
    [
        pytest.param(
            alg_none(claims()),
            "assertion: token has an empty segment",
            id="alg none",
        ),
        pytest.param(
            alg_none(claims(), b"sig"),
            "assertion: alg 'none' is not allowed",
            id="alg none with a signature",
        ),
        pytest.param(
            hs256_with(ES256.public_pem(), claims(), kid="es"),
            "assertion: alg 'HS256' is not allowed",
            id="HS256 keyed with the public key",
        ),
        pytest.param(
            STRANGER.sign(claims()),
            "assertion signature does not verify",
            id="a stranger's key under the client's kid",
        ),
        pytest.param(
            FORGED_KEY.sign(claims()),
            "no client key for kid 'attacker' and ES256",
            id="a key not in the client's set",
        ),
        pytest.param(
            FORGED_KEY.sign(
                claims(), kid="es", jku="https://attacker.example/jwks.json"
            ),
            "assertion signature does not verify",
            id="jku pointing elsewhere",
        ),
        pytest.param(
            FORGED_KEY.sign(claims(), kid="es", jwk=FORGED_KEY.jwk),
            "assertion signature does not verify",
            id="embedded jwk",
        ),
        pytest.param(
            make_key("RS256", "es").sign(claims()),
            "no client key for kid 'es' and RS256",
            id="right kid, wrong key type",
        ),
        pytest.param(
            ES256.sign(claims(), typ="at+jwt"),
            "assertion: typ 'at+jwt' is not JWT",
            id="an access token",
        ),
        pytest.param(
            ES256.sign(claims(), crit=["exp"]),
            "assertion: crit header present",
            id="crit",
        ),
        pytest.param(
            ES256.sign(claims(aud="https://as.example/oauth2/introspect")),
            "assertion aud is neither token endpoint nor issuer",
            id="wrong aud",
        ),
        pytest.param(
            ES256.sign(claims(aud=None)),
            "assertion aud is neither token endpoint nor issuer",
            id="no aud",
        ),
        pytest.param(
            ES256.sign(claims(aud=[ISSUER, 7])),
            "assertion aud is neither token endpoint nor issuer",
            id="aud list with a non-string",
        ),
        pytest.param(
            ES256.sign(claims(exp=None)),
            "assertion exp missing or not a number",
            id="no exp",
        ),
        pytest.param(
            ES256.sign(claims(exp=True)),
            "assertion exp missing or not a number",
            id="exp a boolean",
        ),
        pytest.param(
            ES256.sign(claims(exp=NOW - 30)), "assertion expired", id="expired"
        ),
        pytest.param(
            ES256.sign(claims(exp=NOW + 631)),
            "assertion expires more than 600s ahead",
            id="too long-lived",
        ),
        pytest.param(
            ES256.sign(claims(nbf=NOW + 31)),
            "assertion nbf is in the future",
            id="not yet valid",
        ),
        pytest.param(
            ES256.sign(claims(iat=NOW + 31)),
            "assertion iat is in the future",
            id="issued in the future",
        ),
        pytest.param(
            ES256.sign(claims(iat="now")),
            "assertion iat not a number",
            id="iat a string",
        ),
        pytest.param(
            ES256.sign(claims(jti=None)),
            "assertion jti missing or not a string",
            id="no jti",
        ),
        pytest.param(
            ES256.sign(claims(jti="")),
            "assertion jti missing or not a string",
            id="empty jti",
        ),
        pytest.param(
            ES256.sign(claims(jti=42)),
            "assertion jti missing or not a string",
            id="jti a number",
        ),
        pytest.param(
            ES256.sign(claims(jti="j" * 257)),
            "assertion jti longer than 256",
            id="jti too long",
        ),
        pytest.param(
            ES256.sign(claims(pad="x" * MAX_ASSERTION_BYTES)),
            f"assertion: token longer than {MAX_ASSERTION_BYTES} bytes",
            id="over 8 KiB",
        ),
    ],
)
async def test_assertions_breaking_a_rule_are_refused(
    assertion: str, detail: str
) -> None:
    setup = Setup()

    assert await setup.refused(assertion, client_id="app") == detail
    assert setup.used.records == {}


@pytest.mark.parametrize(
    ("client_id", "detail"),
    [
        pytest.param("ghost", "unknown client", id="unknown client"),
        pytest.param("caf\u00e9", "unknown client", id="impossible client id"),
        pytest.param("off", "client disabled", id="disabled client"),
        pytest.param(
            "secret-app",
            "client does not authenticate with private_key_jwt",
            id="a secret client",
        ),
    ],
)
async def test_only_an_enabled_private_key_jwt_client_may_use_an_assertion(
    client_id: str, detail: str
) -> None:
    setup = Setup()
    assertion = ES256.sign(claims_for(client_id, TOKEN_ENDPOINT, NOW))

    assert await setup.refused(assertion) == detail


async def test_a_private_key_jwt_client_cannot_use_a_secret() -> None:
    # Even the secret whose hash it stores, were anyone to know it.
    setup = Setup(key_client(secret_hash=hash_secret(PEPPER, SECRET)))

    with pytest.raises(InvalidClient) as raised:
        await authenticate(
            Credentials("app", SECRET, "client_secret_post"),
            setup.directory,
            PEPPER,
            NOW,
            setup.assertions,
        )

    assert raised.value.detail == "client does not authenticate with a secret"


async def test_without_a_verifier_every_assertion_fails() -> None:
    credentials = read_credentials(
        None, form(client_assertion_type=ASSERTION_TYPE, client_assertion=ASSERTION)
    )

    with pytest.raises(InvalidClient) as raised:
        await authenticate(credentials, Directory(*CLIENTS), PEPPER, NOW)

    assert raised.value.detail == "private_key_jwt is not available here"


# Replay.


async def test_an_assertion_is_accepted_once() -> None:
    setup = Setup()
    assertion = ES256.sign(claims())

    await setup.attempt(assertion)
    detail = await setup.refused(assertion)

    assert detail == "assertion replayed: its jti was used before"


async def test_a_jti_is_remembered_until_the_assertion_can_no_longer_be_used() -> None:
    setup = Setup()
    jti = "once"

    await setup.attempt(ES256.sign(claims(jti=jti, exp=NOW + 60)))

    assert setup.used.records == {replay_key("app", jti): NOW + 60 + 30}
    # Another assertion with the same jti, while the first could be replayed.
    later = NOW + 89
    assert await setup.refused(
        ES256.sign(claims_for("app", ISSUER, later, jti=jti)), now=later
    )


async def test_jtis_are_per_client() -> None:
    other = key_client("other")
    setup = Setup(CLIENTS[0], other)

    await setup.attempt(ES256.sign(claims(jti="shared")))
    await setup.attempt(ES256.sign(claims_for("other", ISSUER, NOW, jti="shared")))

    assert replay_key("app", "shared") != replay_key("other", "shared")
    assert len(setup.used.records) == 2


async def test_a_refused_assertion_does_not_use_up_its_jti() -> None:
    setup = Setup()

    await setup.refused(STRANGER.sign(claims(jti="mine")))
    await setup.refused(ES256.sign(claims(jti="mine", aud="https://elsewhere")))

    assert await setup.attempt(ES256.sign(claims(jti="mine")))


def test_the_replay_key_is_a_bounded_digest() -> None:
    key = replay_key("app", "j" * 256)

    assert len(key) == 64 and int(key, 16) >= 0
    # A client id never holds "\0", so the separator cannot be shifted.
    assert replay_key("ab", "c") != replay_key("a", "bc")


# Lockout counts assertion failures as it counts wrong secrets.


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


async def test_failed_assertions_count_towards_the_lockout() -> None:
    setup = Setup()
    limiter = LocalLimiter()
    audit = Events()

    async def no_sleep(seconds: float) -> None:
        pass

    guard = Guard(
        limiter,
        RateLimits(0, 1, 0, 1),
        Lockout(window=300, slowdown_after=5, lockout_after=3, lockout_seconds=60),
        audit,
        sleep=no_sleep,
        assertions=setup.assertions,
    )

    async def attempt(assertion: str) -> Client:
        credentials = read_credentials(
            None, form(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion)
        )
        return await guard.authenticate(credentials, setup.directory, PEPPER, NOW)

    good = ES256.sign(claims())
    assert await attempt(good) is CLIENTS[0]
    for _ in range(2):
        with pytest.raises(InvalidClient):
            await attempt(good)  # a replay is a failure like any other
    with pytest.raises(InvalidClient):
        await attempt(STRANGER.sign(claims()))

    assert [event for event, _ in audit.events] == ["client.locked_out"]
    assert await limiter.locked_until("app", NOW) == NOW + 60
    await guard.close()


# Where the keys come from.


class JwksServer:
    """A client's jwks_uri, answered in-process; counts its fetches."""

    def __init__(self, document: dict[str, Any], status: int = 200) -> None:
        self.document = document
        self.status = status
        self.fetches = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        return httpx.Response(
            self.status,
            json=self.document,
            headers={"Cache-Control": "max-age=300"},
        )


def uri_client(uri: str = "https://app.example/jwks.json") -> Client:
    return make_client(auth_method="private_key_jwt", jwks_uri=uri)


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


async def test_a_jwks_uri_is_fetched_once_for_many_assertions() -> None:
    published = JwksServer(jwks(ES256, SECOND))
    clock = Clock()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(published.handle)
    ) as http:
        keys = ClientKeySources(clock, http=http)
        client = uri_client()

        for pair in (ES256, SECOND) * 5:
            assert await keys.find(client, pair.kid, "ES256") is not None
        assert published.fetches == 1

        # An unknown kid asks again, at most once per refresh interval.
        assert await keys.find(client, "new", "ES256") is None
        assert published.fetches == 1
        clock.now += 30
        assert await keys.find(client, "new", "ES256") is None
        assert await keys.find(client, "newer", "ES256") is None
        assert published.fetches == 2

        # After its max-age the set is fetched again.
        clock.now += 300
        assert await keys.find(client, "es", "ES256") is not None
        assert published.fetches == 3


async def test_a_client_with_new_keys_gets_a_new_source() -> None:
    keys = ClientKeySources(lambda: NOW)
    before = key_client("app", ES256)
    after = key_client("app", STRANGER)

    assert await keys.find(before, "es", "ES256") is not None
    found = await keys.find(after, "es", "ES256")

    assert found is not None
    assert found is not await keys.find(before, "es", "ES256")


async def test_an_unreachable_jwks_uri_is_unavailable_and_not_hammered() -> None:
    published = JwksServer({}, status=500)
    clock = Clock()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(published.handle)
    ) as http:
        keys = ClientKeySources(clock, http=http, refresh_interval=30)
        client = uri_client()

        for _ in range(5):
            with pytest.raises(TemporarilyUnavailable):
                await keys.find(client, "es", "ES256")
        assert published.fetches == 1

        clock.now += 30
        published.status, published.document = 200, jwks(ES256)
        assert await keys.find(client, "es", "ES256") is not None
        assert published.fetches == 2


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        pytest.param({}, "client has neither jwks nor jwks_uri", id="no keys"),
        pytest.param(
            {"jwks": json.dumps(jwks(ES256)), "jwks_uri": "https://a.example/k"},
            "client has both jwks and jwks_uri",
            id="both",
        ),
        pytest.param(
            {"jwks": '{"keys": []}'},
            "client jwks unusable: no usable signing key",
            id="empty set",
        ),
        pytest.param({"jwks": "{"}, "client jwks unusable: ", id="not JSON"),
        pytest.param(
            {"jwks_uri": "http://app.example/jwks.json"},
            "client jwks_uri unusable: jwks_uri must be https, or http on a "
            "loopback host",
            id="plain http",
        ),
    ],
)
async def test_an_unusable_key_configuration_fails_authentication(
    fields: dict[str, str], detail: str
) -> None:
    keys = ClientKeySources(lambda: NOW)
    client = make_client(auth_method="private_key_jwt", **fields)

    with pytest.raises(InvalidClient) as raised:
        await keys.find(client, "es", "ES256")

    assert raised.value.detail.startswith(detail)
