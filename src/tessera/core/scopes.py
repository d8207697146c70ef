"""Scope and target (resource, audience) resolution: what a request may
have, narrowed from what its client, or its trust policy, allows."""

from __future__ import annotations

import re
from collections.abc import Set
from typing import Protocol
from urllib.parse import urlsplit

from tessera.core.errors import InvalidScope, InvalidTarget


class Grantee(Protocol):
    """What a token may be issued for: a client, or a trust policy."""

    @property
    def scopes(self) -> Set[str]: ...

    @property
    def default_scopes(self) -> Set[str]: ...

    @property
    def audiences(self) -> tuple[str, ...]: ...


# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


def parse_scope(value: str) -> frozenset[str]:
    tokens = value.split(" ")
    if not all(_SCOPE_TOKEN.match(token) for token in tokens):
        raise InvalidScope("The scope parameter is malformed.")
    return frozenset(tokens)


def resolve_scope(requested: str | None, client: Grantee) -> frozenset[str]:
    """The requested scope if the client may have all of it; without a
    request, the client's default scope (RFC 6749 §3.3)."""
    if requested is None:
        return frozenset(client.default_scopes)
    scopes = parse_scope(requested)
    if not scopes <= client.scopes:
        raise InvalidScope(detail="requested " + " ".join(sorted(scopes)))
    return scopes


def resolve_audiences(
    resources: list[str], audiences: list[str], client: Grantee
) -> tuple[str, ...]:
    """The token's audiences: what was asked for with ``resource`` (RFC 8707)
    and ``audience`` (RFC 8693), each among the client's allowed audiences;
    without a request, all of them."""
    for resource in resources:
        parts = urlsplit(resource)
        # RFC 8707 §2: an absolute URI without a fragment. RFC 3986 §4.3:
        # absolute means it has a scheme; a URN has no authority part.
        if not parts.scheme or "#" in resource:
            raise InvalidTarget("A resource must be an absolute URI.")
    requested = list(dict.fromkeys(resources + audiences))
    if not requested:
        if not client.audiences:
            raise InvalidTarget(detail="client has no audience")
        return client.audiences
    allowed = set(client.audiences)
    for audience in requested:
        if audience not in allowed:
            raise InvalidTarget(detail="audience not allowed for client")
    return tuple(requested)
