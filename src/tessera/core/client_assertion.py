"""Client authentication with a signed JWT: ``private_key_jwt`` (RFC 7523
§2.2 and §3, OpenID Connect Core §9).

The client signs a short-lived JWT with its private key and sends it as
``client_assertion``. ``ClientAssertions.verify`` runs, cheapest first:

    check_size, check_segments      _jws.split_token, _jws.decode_segment
    check_header                    alg allow-list, typ JWT or none, no crit
    load_key                        among the client's own keys; kid only selects
    check_signature                 cryptography, on a key converted once
    check_claims                    iss, sub, aud, exp, nbf, iat, jti
    reject_replay                   the jti is remembered until the assertion expires

Every refusal is ``InvalidClient`` with a private detail that never repeats
the assertion. Where a client's keys come from (inline, or fetched from its
``jwks_uri``) and where used jtis are remembered (shared by every node) are
the business of the ``ClientKeys`` and ``UsedAssertions`` behind it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature

from tessera.core.clients import Client
from tessera.core.errors import InvalidClient, InvalidToken
from tessera.verify._claims import _is_number
from tessera.verify._jws import (
    decode_json_object,
    decode_segment,
    parse_header,
    shown,
    split_token,
)
from tessera.verify._keys import PublicKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PRIVATE_KEY_JWT = "private_key_jwt"

# Asymmetric only: the client shares no secret with Tessera, so an HS256
# assertion could only be keyed with something public. "none" never is.
ALGORITHMS = frozenset({"ES256", "EdDSA", "PS256", "RS256"})
MAX_ASSERTION_BYTES = 8 * 1024
# Client and server clocks drift; half a minute either way is tolerated.
LEEWAY = 30
# An assertion valid for long is a reusable credential in all but name: a
# client makes a new one per request, so minutes are plenty.
MAX_LIFETIME = 600
MAX_JTI_CHARS = 256


class ClientKeys(Protocol):
    async def find(self, client: Client, kid: str | None, alg: str) -> PublicKey | None:
        """The client's key for ``kid`` and ``alg``, from its ``jwks`` or its
        ``jwks_uri`` and nowhere else; None when it has no such key. Raises
        InvalidClient when the client's key configuration is unusable, and
        TemporarilyUnavailable when its keys cannot be fetched and none are
        cached."""
        ...

    async def close(self) -> None:
        """Release connections, if any."""
        ...


class UsedAssertions(Protocol):
    async def first_use(self, key: str, expires_at: int, now: int) -> bool:
        """Remember ``key`` until ``expires_at``, atomically for every node:
        True if it was not remembered yet, False for a replay. A key whose
        record expired before ``now`` counts as new. Raises when no store
        can answer; never answers True in doubt."""
        ...

    async def close(self) -> None:
        """Release connections, if any."""
        ...


def peek_client_id(assertion: str) -> str:
    """The client an assertion names, before any check: its ``sub``, which
    must equal its ``iss`` (RFC 7523 §3 items 1 and 2). Only for choosing
    whose keys to check it with, when the request has no ``client_id``."""
    try:
        _, _, payload, _ = split_token(assertion, MAX_ASSERTION_BYTES)
        claims = decode_json_object(decode_segment(payload), "assertion payload")
    except InvalidToken as exc:
        raise InvalidClient(detail=f"assertion: {exc.detail}") from None

    sub = claims.get("sub")
    if type(sub) is not str or not sub:
        raise InvalidClient(detail="assertion sub missing or not a string")
    if claims.get("iss") != sub:
        raise InvalidClient(detail="assertion iss is not its sub")
    return sub


def replay_key(client_id: str, jti: str) -> str:
    """What the used-assertion stores keep: a digest, so every key has the
    same bounded length and no jti is stored as sent. jtis are per client
    (RFC 7519 §4.1.7), so the client id is part of the key."""
    # "surrogatepass": a JSON string may hold an unpaired surrogate escape.
    data = (client_id + "\0" + jti).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


class ClientAssertions:
    """Verification of ``client_assertion`` JWTs for the server at ``issuer``.

    The assertion's ``aud`` must name the token endpoint or the issuer
    itself (RFC 7523 §3 item 3); the same audience serves introspection and
    revocation, as OpenID Connect Core §9 has it.
    """

    def __init__(self, issuer: str, keys: ClientKeys, used: UsedAssertions) -> None:
        self._audiences = frozenset({issuer, issuer + "/oauth2/token"})
        self._keys = keys
        self._used = used

    async def verify(self, assertion: str, client: Client, now: float) -> None:
        """Return if ``assertion`` authenticates ``client`` at ``now``, and
        remember it so it never does again; raise InvalidClient otherwise."""
        try:
            signing_input, header_b64, payload_b64, signature_b64 = split_token(
                assertion, MAX_ASSERTION_BYTES
            )
            # jwk, jku, x5u and x5c are never read: the keys are the client's.
            header = parse_header(header_b64, ALGORITHMS, typ="JWT", typ_required=False)
            signature = decode_segment(signature_b64)
            payload = decode_segment(payload_b64)
        except InvalidToken as exc:
            raise InvalidClient(detail=f"assertion: {exc.detail}") from None

        key = await self._keys.find(client, header.kid, header.alg)
        if key is None:
            raise InvalidClient(
                detail=f"no client key for kid {shown(header.kid)} and {header.alg}"
            )
        try:
            key.check(signature, signing_input)
        except InvalidSignature:
            raise InvalidClient(detail="assertion signature does not verify") from None

        try:
            claims = decode_json_object(payload, "assertion payload")
        except InvalidToken as exc:
            raise InvalidClient(detail=f"assertion: {exc.detail}") from None
        jti, exp = check_claims(claims, client.client_id, self._audiences, now)
        await self.reject_replay(client.client_id, jti, exp, now)

    async def reject_replay(
        self, client_id: str, jti: str, exp: float, now: float
    ) -> None:
        # Remembered for as long as the assertion would still be accepted:
        # its exp plus the leeway given to it.
        expires_at = math.ceil(exp + LEEWAY)
        key = replay_key(client_id, jti)
        if not await self._used.first_use(key, expires_at, int(now)):
            raise InvalidClient(detail="assertion replayed: its jti was used before")

    async def close(self) -> None:
        await self._keys.close()
        await self._used.close()


def check_claims(
    claims: Mapping[str, Any], client_id: str, audiences: frozenset[str], now: float
) -> tuple[str, float]:
    """The assertion's ``jti`` and ``exp`` once RFC 7523 §3 holds for it at
    ``now``; InvalidClient otherwise."""
    if claims.get("iss") != client_id:
        raise InvalidClient(detail="assertion iss is not the client id")
    if claims.get("sub") != client_id:
        raise InvalidClient(detail="assertion sub is not the client id")
    if not _names_audience(claims.get("aud"), audiences):
        raise InvalidClient(detail="assertion aud is neither token endpoint nor issuer")

    exp = claims.get("exp")
    if not _is_number(exp):
        raise InvalidClient(detail="assertion exp missing or not a number")
    if exp <= now - LEEWAY:
        raise InvalidClient(detail="assertion expired")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise InvalidClient(detail=f"assertion expires more than {MAX_LIFETIME}s ahead")
    for name in ("nbf", "iat"):
        if name in claims:
            value = claims[name]
            if not _is_number(value):
                raise InvalidClient(detail=f"assertion {name} not a number")
            if value > now + LEEWAY:
                raise InvalidClient(detail=f"assertion {name} is in the future")

    jti = claims.get("jti")
    if type(jti) is not str or not jti:
        raise InvalidClient(detail="assertion jti missing or not a string")
    if len(jti) > MAX_JTI_CHARS:
        raise InvalidClient(detail=f"assertion jti longer than {MAX_JTI_CHARS}")
    return jti, exp


def _names_audience(aud: object, audiences: frozenset[str]) -> bool:
    if type(aud) is str:
        return aud in audiences
    return (
        type(aud) is list
        and all(type(item) is str for item in aud)
        and not audiences.isdisjoint(aud)
    )
