from __future__ import annotations

import base64

import pytest

from tessera.core.client_auth import (
    Credentials,
    authenticate,
    loggable_client_id,
    read_credentials,
)
from tessera.core.errors import InvalidClient, InvalidRequest
from tessera.core.form import Form
from tessera.core.secrets import generate_secret, hash_secret
from tests.core.clients import Directory, make_client

PEPPER = b"pepper".ljust(32, b"\0")
NOW = 1_700_000_000
GRACE_ENDS = NOW + 600


def basic(user_pass: str | bytes) -> str:
    raw = user_pass.encode() if isinstance(user_pass, str) else user_pass
    return "Basic " + base64.b64encode(raw).decode()


def post(client_id: str, secret: str) -> Credentials:
    return Credentials(client_id, secret, "client_secret_post")


def via_basic(client_id: str, secret: str) -> Credentials:
    return Credentials(client_id, secret, "client_secret_basic")


def bare(client_id: str) -> Credentials:
    """A client_id alone: how a public client names itself."""
    return Credentials(client_id, "", "none")


@pytest.mark.parametrize(
    ("authorization", "body", "expected"),
    [
        pytest.param(basic("app:s3cret"), b"", via_basic("app", "s3cret"), id="basic"),
        pytest.param(
            "basic " + basic("app:s3cret")[6:],
            b"",
            via_basic("app", "s3cret"),
            id="scheme is case-insensitive",
        ),
        pytest.param(
            basic("my+app:a+b"), b"", via_basic("my app", "a b"), id="basic: + is space"
        ),
        pytest.param(
            basic("urn%3Aapp:x%3Ay"),
            b"",
            via_basic("urn:app", "x:y"),
            id="basic: %3A is a colon",
        ),
        pytest.param(
            basic("app:x:y"), b"", via_basic("app", "x:y"), id="basic: split at first :"
        ),
        pytest.param(
            basic("caf%C3%A9:%E2%82%AC"),
            b"",
            via_basic("caf\u00e9", "\u20ac"),
            id="basic: escaped UTF-8",
        ),
        pytest.param(
            basic("caf\u00e9:\u20ac".encode()),
            b"",
            via_basic("caf\u00e9", "\u20ac"),
            id="basic: raw UTF-8",
        ),
        pytest.param(
            basic("app:"), b"", via_basic("app", ""), id="basic: empty secret"
        ),
        pytest.param(
            basic("app:s"),
            b"client_id=app",
            via_basic("app", "s"),
            id="basic with the same client_id in the body",
        ),
        pytest.param(
            None,
            b"client_id=app&client_secret=s3cret",
            post("app", "s3cret"),
            id="post",
        ),
        pytest.param(
            None,
            b"client_id=urn%3Aapp&client_secret=a+b%2B",
            post("urn:app", "a b+"),
            id="post: form-decoded",
        ),
        pytest.param(None, b"client_id=app", bare("app"), id="client_id alone"),
    ],
)
def test_read_credentials(
    authorization: str | None, body: bytes, expected: Credentials
) -> None:
    assert read_credentials(authorization, Form.parse(body)) == expected


MALFORMED = "malformed basic credentials"


@pytest.mark.parametrize(
    ("authorization", "body", "detail", "is_basic"),
    [
        pytest.param(basic("appsecret"), b"", MALFORMED, True, id="no colon"),
        pytest.param("Basic !!!!", b"", MALFORMED, True, id="not base64"),
        pytest.param("Basic YXBwOnM", b"", MALFORMED, True, id="base64 unpadded"),
        pytest.param("Basic", b"", MALFORMED, True, id="scheme only"),
        pytest.param(
            "Basic \u00e9\u00e9\u00e9\u00e9", b"", MALFORMED, True, id="non-ASCII"
        ),
        pytest.param(basic(b"\xff:\xfe"), b"", MALFORMED, True, id="not UTF-8"),
        pytest.param(basic("%ff:x"), b"", MALFORMED, True, id="escape not UTF-8"),
        pytest.param(
            "Bearer abc",
            b"",
            "unsupported authentication scheme",
            True,
            id="Bearer scheme",
        ),
        pytest.param(
            "", b"", "unsupported authentication scheme", True, id="empty header"
        ),
        pytest.param(None, b"", "no client authentication", False, id="nothing"),
    ],
)
def test_read_credentials_rejects_as_invalid_client(
    authorization: str | None, body: bytes, detail: str, is_basic: bool
) -> None:
    with pytest.raises(InvalidClient) as raised:
        read_credentials(authorization, Form.parse(body))

    assert (raised.value.error, raised.value.status) == ("invalid_client", 401)
    assert raised.value.description == "Client authentication failed."
    assert raised.value.detail == detail
    assert raised.value.basic is is_basic


@pytest.mark.parametrize(
    ("authorization", "body", "description"),
    [
        pytest.param(
            basic("app:s"),
            b"client_id=app&client_secret=s",
            "Use one client authentication method, not two.",
            id="basic and post",
        ),
        pytest.param(
            basic("app:s"),
            b"client_id=other",
            "The client_id does not match the credentials.",
            id="body client_id differs from basic",
        ),
        pytest.param(
            None,
            b"client_secret=s",
            "The client_id parameter is missing.",
            id="post secret without client_id",
        ),
        pytest.param(
            None,
            b"client_id=app&client_secret=a&client_secret=b",
            "The client_secret parameter is repeated.",
            id="post secret repeated",
        ),
    ],
)
def test_read_credentials_rejects_as_invalid_request(
    authorization: str | None, body: bytes, description: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        read_credentials(authorization, Form.parse(body))

    assert type(raised.value) is InvalidRequest
    assert raised.value.description == description


CURRENT = generate_secret()
PREVIOUS = generate_secret()
DIRECTORY_CLIENTS = (
    make_client(
        client_id="app",
        secret_hash=hash_secret(PEPPER, CURRENT),
        previous_secret_hash=hash_secret(PEPPER, PREVIOUS),
        previous_secret_expires_at=GRACE_ENDS,
    ),
    make_client(
        client_id="no-deadline",
        secret_hash=hash_secret(PEPPER, CURRENT),
        previous_secret_hash=hash_secret(PEPPER, PREVIOUS),
        previous_secret_expires_at=None,
    ),
    make_client(
        client_id="off", secret_hash=hash_secret(PEPPER, CURRENT), disabled=True
    ),
    make_client(client_id="spa", auth_method="none"),
    make_client(client_id="spa-off", auth_method="none", disabled=True),
)


@pytest.mark.parametrize(
    ("credentials", "now"),
    [
        pytest.param(post("app", CURRENT), NOW, id="current secret"),
        pytest.param(
            post("app", CURRENT), GRACE_ENDS + 10**6, id="current secret, much later"
        ),
        pytest.param(via_basic("app", PREVIOUS), NOW, id="previous within grace"),
        pytest.param(
            post("app", PREVIOUS), GRACE_ENDS - 1, id="previous, last second of grace"
        ),
    ],
)
async def test_authenticate_accepts(credentials: Credentials, now: float) -> None:
    client = await authenticate(credentials, Directory(*DIRECTORY_CLIENTS), PEPPER, now)

    assert client is DIRECTORY_CLIENTS[0]


async def test_a_public_client_is_identified_by_its_client_id_alone() -> None:
    client = await authenticate(bare("spa"), Directory(*DIRECTORY_CLIENTS), PEPPER, NOW)

    assert client.client_id == "spa"


@pytest.mark.parametrize(
    ("credentials", "now", "detail"),
    [
        pytest.param(
            post("app", PREVIOUS), GRACE_ENDS, "wrong secret", id="previous after grace"
        ),
        pytest.param(
            post("no-deadline", PREVIOUS),
            NOW,
            "wrong secret",
            id="previous without a deadline",
        ),
        pytest.param(post("app", "nope"), NOW, "wrong secret", id="wrong secret"),
        pytest.param(
            via_basic("app", generate_secret()),
            NOW,
            "wrong secret",
            id="wrong secret via basic",
        ),
        pytest.param(post("ghost", CURRENT), NOW, "unknown client", id="unknown"),
        pytest.param(
            via_basic("ghost", CURRENT), NOW, "unknown client", id="unknown via basic"
        ),
        pytest.param(post("off", CURRENT), NOW, "client disabled", id="disabled"),
        pytest.param(
            post("off", "nope"), NOW, "client disabled", id="disabled, wrong secret"
        ),
        pytest.param(
            bare("app"),
            NOW,
            "no client authentication",
            id="confidential client, client_id alone",
        ),
        pytest.param(bare("ghost"), NOW, "unknown client", id="unknown, bare id"),
        pytest.param(
            bare("spa-off"), NOW, "client disabled", id="disabled public client"
        ),
        pytest.param(
            post("spa", CURRENT),
            NOW,
            "client does not authenticate with a secret",
            id="public client with a secret",
        ),
    ],
)
async def test_authenticate_rejects(
    credentials: Credentials, now: float, detail: str
) -> None:
    with pytest.raises(InvalidClient) as raised:
        await authenticate(credentials, Directory(*DIRECTORY_CLIENTS), PEPPER, now)

    assert raised.value.description == "Client authentication failed."
    assert raised.value.detail == detail
    assert raised.value.basic is credentials.basic


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param("caf\u00e9", id="non-ASCII"),
        pytest.param("my app", id="space"),
        pytest.param("", id="empty"),
        pytest.param("a" * 129, id="129 characters"),
    ],
)
async def test_authenticate_never_looks_up_an_impossible_client_id(
    client_id: str,
) -> None:
    directory = Directory(*DIRECTORY_CLIENTS)

    with pytest.raises(InvalidClient) as raised:
        await authenticate(post(client_id, CURRENT), directory, PEPPER, NOW)

    assert raised.value.detail == "unknown client"
    assert directory.lookups == []


async def test_authenticate_looks_up_a_128_character_client_id() -> None:
    directory = Directory()

    with pytest.raises(InvalidClient):
        await authenticate(post("a" * 128, CURRENT), directory, PEPPER, NOW)

    assert directory.lookups == ["a" * 128]


@pytest.mark.parametrize(
    ("presented", "shown"),
    [
        ("ci-deployer", "ci-deployer"),
        (None, None),
        # A secret, a JWT or junk in the id field is shown only as a digest.
        (generate_secret(), "sha256:"),
        ("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "sha256:"),
        ("x" * 129, "sha256:"),
        ("a b", "sha256:"),
    ],
)
def test_the_audit_log_shows_only_well_formed_client_ids(
    presented: str | None, shown: str | None
) -> None:
    logged = loggable_client_id(presented)

    if shown is None or not shown.startswith("sha256:"):
        assert logged == shown
    else:
        assert logged is not None and logged.startswith("sha256:")
        assert len(logged) == len("sha256:") + 16
        assert presented is not None and presented not in logged
