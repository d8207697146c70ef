"""The JWS compact serialization, read the way a resource server can afford.

RFC 7515 §5.2 lists the steps to validate a JWS. They run here cheapest
first: the size of the token, its three segments and their base64url, then
the JOSE header. Cryptography comes later, in ``_keys``, and only for a token
whose header passed every check in this module.

Base64url is strict (RFC 7515 §2): no padding, no characters outside the
URL-safe alphabet, and no stray bits in the last character, so that each
signature has exactly one spelling. JSON is strict too: UTF-8 only, an object
at the top, no ``NaN`` or ``Infinity``, and no duplicate member names in the
header (RFC 7515 §5.2 step 4).
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any, NoReturn

from tessera.core.errors import InvalidToken

__all__ = [
    "JoseHeader",
    "decode_base64url",
    "decode_json_object",
    "decode_segment",
    "parse_header",
    "shown",
    "split_token",
]

# To the alphabet binascii decodes: "-" and "_" become "+" and "/", and the
# characters only standard base64 has ("+", "/", "=") become "*". binascii
# skips "*" like any other foreign character, and a skipped character leaves
# the decoded segment shorter than its length promises: decode_segment checks
# that length, which makes one translation do the work of a validation pass.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING = (b"", b"", b"==", b"=")
# The characters that may end a segment whose length leaves 2 or 3 characters
# in its last quantum: the ones whose unused low bits are zero.
_CANONICAL_LAST = (b"", b"", b"AQgw", b"AEIMQUYcgkosw048")


@dataclass(frozen=True, slots=True)
class JoseHeader:
    """The parts of a checked JOSE header that select the verification key."""

    alg: str
    kid: str | None


def shown(value: object) -> str:
    """A short ``repr`` of an untrusted value, fit for a log line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def split_token(token: str, max_bytes: int) -> tuple[bytes, bytes, bytes, bytes]:
    """Return the signing input of ``token`` and its three segments, the
    segments translated for ``decode_segment``.

    The size cap comes before anything else, so an oversized token costs one
    length comparison.
    """
    if len(token) > max_bytes:
        raise InvalidToken(detail=f"token longer than {max_bytes} bytes")

    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken(detail="token is not ASCII") from None
    segments = raw.translate(_TO_STANDARD).split(b".")
    if len(segments) != 3:
        raise InvalidToken(detail="token does not have three segments")

    header, payload, signature = segments
    if not header or not payload or not signature:
        raise InvalidToken(detail="token has an empty segment")
    return raw[: len(header) + len(payload) + 1], header, payload, signature


def decode_segment(segment: bytes) -> bytes:
    """Decode one segment returned by ``split_token``, strictly."""
    size = len(segment)
    remainder = size % 4
    if remainder:
        if remainder == 1:
            raise InvalidToken(detail="base64url segment has an impossible length")
        if segment[-1] not in _CANONICAL_LAST[remainder]:
            raise InvalidToken(detail="base64url segment is not canonical")
        segment += _PADDING[remainder]

    try:
        data = binascii.a2b_base64(segment)
    except binascii.Error:
        raise InvalidToken(detail="segment is not base64url") from None
    if len(data) != size * 3 // 4:
        raise InvalidToken(detail="segment is not base64url")
    return data


def decode_base64url(text: str) -> bytes:
    """Decode base64url found outside a token, such as a JWK member.

    Raises ``ValueError`` rather than ``InvalidToken``: the input is not a token.
    """
    try:
        return decode_segment(text.encode("ascii").translate(_TO_STANDARD))
    except UnicodeEncodeError:
        raise ValueError("not base64url") from None
    except InvalidToken as exc:
        raise ValueError(exc.detail) from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_UNIQUE_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_unique_members
)
_scan_once = _DECODER.scan_once


def decode_json_object(
    data: bytes, what: str, *, unique: bool = False
) -> dict[str, Any]:
    """Parse ``data`` as a UTF-8 JSON object; ``unique`` rejects duplicate names."""
    try:
        text = data.decode("utf-8")
        value = _UNIQUE_DECODER.decode(text) if unique else _decode_compact(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidToken(detail=f"{what} is not JSON: {type(exc).__name__}") from None

    if type(value) is not dict:
        raise InvalidToken(detail=f"{what} is not a JSON object")
    return value


def _decode_compact(text: str) -> Any:
    # The scanner alone parses compact JSON, which is what issuers send, in
    # about half the time of json.loads. Anything else takes the full path,
    # which also produces the error for invalid input.
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return _DECODER.decode(text)
    if end != len(text):
        return _DECODER.decode(text)
    return value


def _media_types(typ: str) -> frozenset[str]:
    # RFC 7515 §4.1.9: "application/" may be left out of the media type, and
    # media types compare case-insensitively.
    name = typ.lower()
    return frozenset({name, "application/" + name})


_ACCESS_TOKEN_TYPES = _media_types("at+jwt")


def parse_header(
    segment: bytes,
    algorithms: frozenset[str],
    *,
    typ: str = "at+jwt",
    typ_required: bool = True,
) -> JoseHeader:
    """Decode the JOSE header and apply every check that needs no key.

    ``typ`` names the one media type accepted (RFC 9068 §4: access tokens by
    default); ``typ_required=False`` also accepts a header without ``typ``.
    ``jwk``, ``jku``, ``x5u`` and ``x5c`` are never read: the key always comes
    from the issuer's own key set.
    """
    header = decode_json_object(decode_segment(segment), "header", unique=True)

    alg = header.get("alg")
    if type(alg) is not str or alg not in algorithms:
        raise InvalidToken(detail=f"alg {shown(alg)} is not allowed")

    # A missing typ, where allowed, reads as the expected one; "typ": null
    # is still refused.
    types = _ACCESS_TOKEN_TYPES if typ == "at+jwt" else _media_types(typ)
    value = header.get("typ", None if typ_required else typ)
    if type(value) is not str or value.lower() not in types:
        raise InvalidToken(detail=f"typ {shown(value)} is not {typ}")

    # RFC 7515 §4.1.11: no extension is understood here, so any "crit" fails.
    if "crit" in header:
        raise InvalidToken(detail="crit header present")
    # RFC 7797: an unencoded payload changes the signing input.
    if "b64" in header and header["b64"] is not True:
        raise InvalidToken(detail="b64 header present")

    kid = header.get("kid")
    if type(kid) is not str and "kid" in header:
        raise InvalidToken(detail="kid is not a string")
    return JoseHeader(alg, kid)
