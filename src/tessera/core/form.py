"""Strict parsing of ``application/x-www-form-urlencoded`` request bodies."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from tessera.core.errors import InvalidRequest

MAX_FIELDS = 64
# Names and values are printable (RFC 6749 Appendix A); no control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A "%" must start a two-digit hex escape; parse_qsl would keep it verbatim.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _split(text: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of a body, by ``parse_qsl``'s strict rules."""
    if "%" in text or "+" in text:
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    # Nothing to decode, the usual token request: the same rules without the
    # per-field unquoting, which is most of parse_qsl's cost.
    if not text:
        return []
    fields = text.split("&")
    if len(fields) > MAX_FIELDS:
        raise ValueError("too many fields")
    pairs = []
    for field in fields:
        name, equals, value = field.partition("=")
        if not equals:
            raise ValueError("a field without '='")
        pairs.append((name, value))
    return pairs


class Form:
    """Parameters of one request, with the RFC 6749 §3.1 rules: a parameter
    sent without a value counts as omitted, and none may be repeated unless
    the grant allows it (``resource``, ``audience``)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    @classmethod
    def parse(cls, body: bytes) -> Form:
        try:
            text = body.decode("ascii")
            pairs = _split(text)
        except UnicodeDecodeError:
            raise InvalidRequest(
                "The request body is not valid form-urlencoded UTF-8."
            ) from None
        except ValueError:
            raise InvalidRequest("The request body is not valid form data.") from None
        if _BAD_ESCAPE.search(text):
            raise InvalidRequest("The request body has a malformed percent-escape.")
        fields: dict[str, list[str]] = {}
        for name, value in pairs:
            if _CONTROL.search(name) or _CONTROL.search(value):
                raise InvalidRequest("A parameter contains a control character.")
            if value:
                fields.setdefault(name, []).append(value)
        return cls(fields)

    def get(self, name: str) -> str | None:
        values = self._fields.get(name)
        if values is None:
            return None
        if len(values) > 1:
            raise InvalidRequest(f"The {name} parameter is repeated.")
        return values[0]

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise InvalidRequest(f"The {name} parameter is missing.")
        return value

    def get_all(self, name: str) -> list[str]:
        return self._fields.get(name, [])

    def __contains__(self, name: str) -> bool:
        return name in self._fields
