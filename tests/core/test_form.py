from __future__ import annotations

import pytest

from tessera.core.errors import InvalidRequest
from tessera.core.form import MAX_FIELDS, Form

NOT_FORM_DATA = "The request body is not valid form data."
NOT_UTF8 = "The request body is not valid form-urlencoded UTF-8."
BAD_ESCAPE = "The request body has a malformed percent-escape."
CONTROL = "A parameter contains a control character."


def _fields(count: int) -> bytes:
    return "&".join(f"f{i}=v" for i in range(count)).encode()


@pytest.mark.parametrize(
    ("body", "present", "absent"),
    [
        pytest.param(b"", {}, ["grant_type"], id="empty body"),
        pytest.param(
            b"grant_type=client_credentials",
            {"grant_type": ["client_credentials"]},
            [],
            id="one field",
        ),
        pytest.param(b"scope=read+write", {"scope": ["read write"]}, [], id="plus"),
        pytest.param(b"a=x%2By%26z", {"a": ["x+y&z"]}, [], id="escaped + and &"),
        pytest.param(b"a=%C3%A9", {"a": ["\u00e9"]}, [], id="escaped UTF-8"),
        pytest.param(b"a=%e2%82%ac", {"a": ["\u20ac"]}, [], id="lowercase hex"),
        pytest.param(b"a=b=c", {"a": ["b=c"]}, [], id="= inside a value"),
        pytest.param(b"a=1;b=2", {"a": ["1;b=2"]}, ["b"], id="; is no separator"),
        pytest.param(b"a=1&b=", {"a": ["1"]}, ["b"], id="empty value omitted"),
        pytest.param(b"scope=", {}, ["scope"], id="only an empty value"),
        pytest.param(
            b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb",
            {"resource": ["https://a", "https://b"]},
            [],
            id="repeated kept in order",
        ),
        pytest.param(
            b"resource=x&resource=&resource=y",
            {"resource": ["x", "y"]},
            [],
            id="repeated with an empty one",
        ),
        pytest.param(
            _fields(MAX_FIELDS),
            {f"f{i}": ["v"] for i in range(MAX_FIELDS)},
            [],
            id="64 fields",
        ),
    ],
)
def test_parse_accepts(
    body: bytes, present: dict[str, list[str]], absent: list[str]
) -> None:
    form = Form.parse(body)

    assert {name: form.get_all(name) for name in present} == present
    for name in absent:
        assert name not in form
        assert form.get(name) is None


@pytest.mark.parametrize(
    ("body", "description"),
    [
        pytest.param(b"a", NOT_FORM_DATA, id="name without ="),
        pytest.param(b"a&&b", NOT_FORM_DATA, id="a&&b"),
        pytest.param(b"a=1&&b=2", NOT_FORM_DATA, id="empty field between"),
        pytest.param(b"&a=1", NOT_FORM_DATA, id="leading &"),
        pytest.param(b"a=1&", NOT_FORM_DATA, id="trailing &"),
        pytest.param(_fields(MAX_FIELDS + 1), NOT_FORM_DATA, id="65 fields"),
        pytest.param(b"a=%zz", BAD_ESCAPE, id="non-hex escape"),
        pytest.param(b"a=%4", BAD_ESCAPE, id="truncated escape"),
        pytest.param(b"a=100%", BAD_ESCAPE, id="bare % at the end"),
        pytest.param(b"a%g1=1", BAD_ESCAPE, id="bad escape in a name"),
        pytest.param(b"a=%ff", NOT_UTF8, id="escape of invalid UTF-8"),
        pytest.param(b"a=%C3", NOT_UTF8, id="truncated UTF-8 sequence"),
        pytest.param("a=\u00e9".encode(), NOT_UTF8, id="raw non-ASCII byte"),
        pytest.param(b"a=%00", CONTROL, id="escaped NUL"),
        pytest.param(b"a=x%0Ay", CONTROL, id="escaped newline"),
        pytest.param(b"a=%7F", CONTROL, id="escaped DEL"),
        pytest.param(b"a=\t", CONTROL, id="raw tab"),
        pytest.param(b"a%01=1", CONTROL, id="control in a name"),
        pytest.param(b"a=1&b=%0D", CONTROL, id="control in an omitted-looking one"),
    ],
)
def test_parse_rejects(body: bytes, description: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        Form.parse(body)

    assert (raised.value.error, raised.value.status) == ("invalid_request", 400)
    assert raised.value.description == description


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"grant_type=x", "x", id="present"),
        pytest.param(b"other=x", None, id="absent"),
        pytest.param(b"grant_type=", None, id="empty counts as omitted"),
        pytest.param(b"grant_type=x&grant_type=", "x", id="empty repeat ignored"),
    ],
)
def test_get(body: bytes, expected: str | None) -> None:
    assert Form.parse(body).get("grant_type") == expected


def test_get_refuses_a_repeated_parameter() -> None:
    form = Form.parse(b"scope=a&scope=b")

    with pytest.raises(InvalidRequest) as raised:
        form.get("scope")

    assert raised.value.description == "The scope parameter is repeated."


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="absent"),
        pytest.param(b"grant_type=", id="empty"),
    ],
)
def test_require_refuses_a_missing_parameter(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as raised:
        Form.parse(body).require("grant_type")

    assert raised.value.description == "The grant_type parameter is missing."


def test_the_plain_fast_path_splits_exactly_like_parse_qsl() -> None:
    """Bodies with nothing to decode skip parse_qsl; they must come out the
    same, errors included, over every short string of the telling symbols."""
    from itertools import product
    from urllib.parse import parse_qsl

    from tessera.core.form import _split

    def reference(text: str) -> object:
        try:
            return parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=True,
                errors="strict",
                max_num_fields=64,
            )
        except ValueError:
            return "error"

    def fast(text: str) -> object:
        try:
            return _split(text)
        except ValueError:
            return "error"

    for length in range(7):
        for symbols in product("a=&;", repeat=length):
            text = "".join(symbols)
            assert fast(text) == reference(text), text
    many = "&".join(["a=1"] * 65)
    assert fast(many) == reference(many) == "error"
