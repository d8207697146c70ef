from __future__ import annotations

import pytest

from tessera.core.errors import InvalidScope, InvalidTarget
from tessera.core.scopes import parse_scope, resolve_audiences, resolve_scope
from tests.core.clients import make_client

CLIENT = make_client(
    scopes=frozenset({"read", "write", "admin"}),
    default_scopes=frozenset({"read"}),
    audiences=("https://a.example", "https://b.example", "urn:c"),
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("read", {"read"}, id="one"),
        pytest.param("read write", {"read", "write"}, id="two"),
        pytest.param("read read", {"read"}, id="duplicate collapses"),
        pytest.param("api:read/x.y", {"api:read/x.y"}, id="punctuation"),
        pytest.param("! # [ ] ~", {"!", "#", "[", "]", "~"}, id="range edges"),
    ],
)
def test_parse_scope_accepts(value: str, expected: set[str]) -> None:
    assert parse_scope(value) == frozenset(expected)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(" read", id="leading space"),
        pytest.param("read ", id="trailing space"),
        pytest.param("read  write", id="double space"),
        pytest.param("read\twrite", id="tab"),
        pytest.param('re"ad', id="double quote"),
        pytest.param("re\\ad", id="backslash"),
        pytest.param("r\u00e9ad", id="non-ASCII"),
        pytest.param("read\x7f", id="DEL"),
    ],
)
def test_parse_scope_rejects(value: str) -> None:
    with pytest.raises(InvalidScope) as raised:
        parse_scope(value)

    assert (raised.value.error, raised.value.status) == ("invalid_scope", 400)
    assert raised.value.description == "The scope parameter is malformed."


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        pytest.param(None, {"read"}, id="no request: default scope"),
        pytest.param("write", {"write"}, id="one allowed"),
        pytest.param("read write admin", {"read", "write", "admin"}, id="all allowed"),
    ],
)
def test_resolve_scope(requested: str | None, expected: set[str]) -> None:
    assert resolve_scope(requested, CLIENT) == frozenset(expected)


@pytest.mark.parametrize(
    ("requested", "description", "detail"),
    [
        pytest.param(
            "read delete",
            "The requested scope is invalid.",
            "requested delete read",
            id="one not allowed",
        ),
        pytest.param(
            "READ",
            "The requested scope is invalid.",
            "requested READ",
            id="case matters",
        ),
        pytest.param(
            "read  write", "The scope parameter is malformed.", "", id="malformed"
        ),
    ],
)
def test_resolve_scope_rejects(requested: str, description: str, detail: str) -> None:
    with pytest.raises(InvalidScope) as raised:
        resolve_scope(requested, CLIENT)

    assert raised.value.description == description
    assert raised.value.detail == detail


def test_resolve_scope_without_request_or_default_is_empty() -> None:
    client = make_client(scopes=frozenset({"read"}), default_scopes=frozenset())

    assert resolve_scope(None, client) == frozenset()


@pytest.mark.parametrize(
    ("resources", "audiences", "expected"),
    [
        pytest.param(
            [],
            [],
            ("https://a.example", "https://b.example", "urn:c"),
            id="no request: every allowed audience",
        ),
        pytest.param(
            ["https://b.example"], [], ("https://b.example",), id="one resource"
        ),
        pytest.param([], ["urn:c"], ("urn:c",), id="one audience"),
        pytest.param(["urn:c"], [], ("urn:c",), id="URN resource"),
        pytest.param(
            ["https://b.example"],
            ["urn:c"],
            ("https://b.example", "urn:c"),
            id="resource and audience, resources first",
        ),
        pytest.param(
            ["https://b.example", "https://a.example"],
            ["https://b.example"],
            ("https://b.example", "https://a.example"),
            id="duplicates collapse, order kept",
        ),
    ],
)
def test_resolve_audiences(
    resources: list[str], audiences: list[str], expected: tuple[str, ...]
) -> None:
    assert resolve_audiences(resources, audiences, CLIENT) == expected


NOT_ABSOLUTE = "A resource must be an absolute URI."
TARGET_INVALID = "The requested resource or audience is invalid."


@pytest.mark.parametrize(
    ("resources", "audiences", "description", "detail"),
    [
        pytest.param(["/api"], [], NOT_ABSOLUTE, "", id="relative resource"),
        pytest.param(["a.example"], [], NOT_ABSOLUTE, "", id="no scheme"),
        pytest.param(
            ["https://a.example#x"], [], NOT_ABSOLUTE, "", id="resource with fragment"
        ),
        pytest.param(
            ["https://evil.example"],
            [],
            TARGET_INVALID,
            "audience not allowed for client",
            id="resource not allowed",
        ),
        pytest.param(
            ["https://a.example"],
            ["https://evil.example"],
            TARGET_INVALID,
            "audience not allowed for client",
            id="one of two not allowed",
        ),
        pytest.param(
            ["https://A.example"],
            [],
            TARGET_INVALID,
            "audience not allowed for client",
            id="compared exactly",
        ),
    ],
)
def test_resolve_audiences_rejects(
    resources: list[str], audiences: list[str], description: str, detail: str
) -> None:
    with pytest.raises(InvalidTarget) as raised:
        resolve_audiences(resources, audiences, CLIENT)

    assert (raised.value.error, raised.value.status) == ("invalid_target", 400)
    assert raised.value.description == description
    assert raised.value.detail == detail


def test_resolve_audiences_for_a_client_without_audiences() -> None:
    with pytest.raises(InvalidTarget) as raised:
        resolve_audiences([], [], make_client(audiences=()))

    assert raised.value.detail == "client has no audience"
