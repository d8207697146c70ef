"""Refresh tokens (RFC 6749 §6), rotated on every use (RFC 9700 §4.14.2).

A refresh token is opaque: ``trt_`` and 43 base64url characters (256 random
bits), stored only as its SHA-256. Each one belongs to a family, started by
an authorization code; using a token rotates it: it is marked rotated and a
successor joins the family. The refresh-token grant runs one pipeline:

    read_refresh_token → load_token → check_client_binding → reject_revoked
    → reject_reused → check_expiry → narrow_scope → check_person
    → rotate → issue

A rotated token presented again means two parties hold it, one of them
probably a thief; the whole family is then revoked (``reject_reused``),
which logs out whoever is left. The exception is a reuse within
``reuse_grace`` seconds of the rotation: two tabs of one browser refreshing
at once, or a response lost on the way. That reuse gets a fresh token in the
same family instead. Rotation itself is one conditional UPDATE, so of two
concurrent uses exactly one rotates, and the other goes through the same
reuse rule as any later one.

A successor lives ``ttl`` from its own issuance: the family lasts as long as
it is used at least once per ``ttl``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tessera.core.audit import Audit
from tessera.core.clients import Client
from tessera.core.errors import InvalidGrant, InvalidScope
from tessera.core.form import Form
from tessera.core.scopes import parse_scope
from tessera.core.user_tokens import (
    Authorization,
    UserTokens,
    granted_scope,
    token_response,
)

REFRESH_TOKEN = "refresh_token"  # noqa: S105
PREFIX = "trt_"
_SHAPE = re.compile(r"^trt_[A-Za-z0-9_-]{43}$")


def new_refresh_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def looks_like_refresh_token(value: str) -> bool:
    """Whether ``value`` has the shape of one of this server's refresh
    tokens: anything else is refused without a look in the store."""
    return _SHAPE.match(value) is not None


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    family_id: str
    client_id: str
    user_id: str
    # The scope the person granted; every token of a family has the same.
    scope: str
    auth_time: int
    issued_at: int
    expires_at: int
    rotated_at: int | None = None
    # When this token, or any token of its family, was revoked.
    revoked_at: int | None = None


class RefreshTokenStore(Protocol):
    async def add(self, token: str, record: RefreshTokenRecord) -> None:
        """Store a new token; only its SHA-256 is kept."""
        ...

    async def find(self, token: str) -> RefreshTokenRecord | None:
        """The token's record, or None for a token never issued (or
        forgotten after it expired). ``revoked_at`` is set when any token of
        the family is revoked, so that a token that joined a family as it
        was being revoked is found revoked too."""
        ...

    async def rotate(
        self, token: str, successor: str, record: RefreshTokenRecord, now: int
    ) -> bool:
        """Mark ``token`` rotated and store ``successor`` with ``record``,
        in one transaction. The mark is one conditional UPDATE (neither
        rotated nor revoked yet), so of concurrent rotations of one token
        exactly one returns True; the others store nothing and return False.
        """
        ...

    async def revoke_family(self, family_id: str, now: int) -> int:
        """Mark every token of the family revoked; the count newly marked."""
        ...


class RefreshTokens:
    """Refresh tokens over their store: families started, found, revoked."""

    def __init__(
        self, store: RefreshTokenStore, *, ttl: int, reuse_grace: float, audit: Audit
    ) -> None:
        self._store = store
        self.ttl = ttl
        self.reuse_grace = reuse_grace
        self._audit = audit

    async def start_family(
        self, client_id: str, grant: Authorization, now: float
    ) -> tuple[str, str]:
        """A first token, in a new family; returns the token and the family
        id (to revoke the family by, should its code be used again)."""
        token = new_refresh_token()
        family_id = secrets.token_urlsafe(24)
        await self._store.add(
            token,
            RefreshTokenRecord(
                family_id=family_id,
                client_id=client_id,
                user_id=grant.user_id,
                scope=grant.scope,
                auth_time=grant.auth_time,
                issued_at=int(now),
                expires_at=int(now) + self.ttl,
            ),
        )
        return token, family_id

    async def find(self, token: str) -> RefreshTokenRecord | None:
        if not looks_like_refresh_token(token):
            return None
        return await self._store.find(token)

    async def successor(
        self, token: str, record: RefreshTokenRecord, now: float
    ) -> str | None:
        """Rotate ``token`` to a new one in its family; None when a
        concurrent request rotated or revoked it first."""
        successor = new_refresh_token()
        fresh = replace(
            record,
            issued_at=int(now),
            expires_at=int(now) + self.ttl,
            rotated_at=None,
            revoked_at=None,
        )
        if record.rotated_at is None:
            rotated = await self._store.rotate(token, successor, fresh, int(now))
            return successor if rotated else None
        # Already rotated, within the grace window: a sibling, not a rotation.
        await self._store.add(successor, fresh)
        return successor

    async def revoke_family(
        self, family_id: str, now: float, *, client_id: str, reason: str
    ) -> None:
        count = await self._store.revoke_family(family_id, int(now))
        self._audit.emit(
            "refresh_token.family_revoked",
            client_id=client_id,
            family_id=family_id,
            reason=reason,
            tokens=count,
        )

    def introspect(self, record: RefreshTokenRecord, now: float) -> dict[str, Any]:
        """RFC 7662 §2.2 for a refresh token that is still usable; the
        caller checked it is the owning client's."""
        if (
            record.revoked_at is not None
            or record.rotated_at is not None
            or record.expires_at <= now
        ):
            return {"active": False}
        return {
            "active": True,
            "client_id": record.client_id,
            "sub": record.user_id,
            "scope": record.scope,
            "iat": record.issued_at,
            "exp": record.expires_at,
        }


class RefreshTokenGrant:
    """RFC 6749 §6, for an authenticated (or public, identified) client."""

    def __init__(self, refresh: RefreshTokens, tokens: UserTokens) -> None:
        self._refresh = refresh
        self._tokens = tokens

    async def handle(self, form: Form, client: Client, now: float) -> dict[str, Any]:
        token = read_refresh_token(form)
        record = await self._load_token(token)
        check_client_binding(record, client)
        reject_revoked(record)
        await self._reject_reused(record, now)
        check_expiry(record, now)
        scope = narrow_scope(form.get("scope"), record, client)
        await self._tokens.check_person(record.user_id)

        successor = await self._rotate(token, record, now)

        grant = Authorization(record.user_id, scope, record.auth_time)
        issued = self._tokens.issue(client, grant, now, grant_type=REFRESH_TOKEN)
        return token_response(issued, successor)

    async def _load_token(self, token: str) -> RefreshTokenRecord:
        record = await self._refresh.find(token)
        if record is None:
            raise InvalidGrant(detail="unknown refresh token")
        return record

    async def _reject_reused(self, record: RefreshTokenRecord, now: float) -> None:
        """RFC 9700 §4.14.2: a rotated token used again after the grace
        window revokes its family."""
        if record.rotated_at is None:
            return
        if now - record.rotated_at <= self._refresh.reuse_grace:
            return
        await self._refresh.revoke_family(
            record.family_id,
            now,
            client_id=record.client_id,
            reason="refresh token reused",
        )
        raise InvalidGrant(detail="refresh token reused")

    async def _rotate(self, token: str, record: RefreshTokenRecord, now: float) -> str:
        successor = await self._refresh.successor(token, record, now)
        if successor is not None:
            return successor
        # A concurrent request rotated it first, or revoked its family: read
        # it again and judge this use as the reuse it now is.
        record = await self._load_token(token)
        reject_revoked(record)
        await self._reject_reused(record, now)
        successor = await self._refresh.successor(token, record, now)
        if successor is None:
            raise InvalidGrant(detail="refresh token rotated concurrently")
        return successor


def read_refresh_token(form: Form) -> str:
    token = form.require("refresh_token")
    if not looks_like_refresh_token(token):
        raise InvalidGrant(detail="malformed refresh token")
    return token


def check_client_binding(record: RefreshTokenRecord, client: Client) -> None:
    """RFC 6749 §10.4: a refresh token is bound to its client. Another
    client's use leaves the token as it was: it proves nothing about theft
    from the client, and must not let anyone revoke someone else's family."""
    if record.client_id != client.client_id:
        raise InvalidGrant(detail="refresh token of another client")


def reject_revoked(record: RefreshTokenRecord) -> None:
    if record.revoked_at is not None:
        raise InvalidGrant(detail="refresh token revoked")


def check_expiry(record: RefreshTokenRecord, now: float) -> None:
    if record.expires_at <= now:
        raise InvalidGrant(detail="refresh token expired")


def narrow_scope(
    requested: str | None, record: RefreshTokenRecord, client: Client
) -> str:
    """RFC 6749 §6: the scope asked for may only narrow the one granted;
    without one, all of it. The refresh token keeps the full grant."""
    granted = frozenset(record.scope.split())
    if requested is None:
        return granted_scope(granted, client)
    scopes = parse_scope(requested)
    if not scopes <= granted:
        raise InvalidScope(
            "The scope may not exceed the one originally granted.",
            detail="requested " + " ".join(sorted(scopes)),
        )
    return granted_scope(scopes, client)
