"""Signed-in browsers, and authorization requests waiting for one.

Both are found by a random value the browser holds (a cookie, or a request
id in a URL); only its SHA-256 is stored, so a copy of the database lets
nobody act as a signed-in person or resume their request."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.store.models import AuthorizationRequestRow, BrowserSessionRow


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class BrowserSession:
    # The stored digest: names the session without being its cookie.
    key: str
    user_id: str
    # When the person last entered their password (OIDC Core auth_time).
    auth_time: int
    expires_at: int


class BrowserSessions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, user_id: str, auth_time: int, expires_at: int) -> str:
        """Store a new session and return the cookie value that finds it."""
        value = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            session.add(
                BrowserSessionRow(
                    session_hash=_digest(value),
                    user_id=user_id,
                    auth_time=auth_time,
                    expires_at=expires_at,
                )
            )
        return value

    async def get(self, value: str, now: int) -> BrowserSession | None:
        """The session the cookie value finds, unless it has expired."""
        async with self._sessions() as session:
            row = await session.get(BrowserSessionRow, _digest(value))
            if row is None or row.expires_at <= now:
                return None
            return BrowserSession(
                row.session_hash, row.user_id, row.auth_time, row.expires_at
            )

    async def delete(self, value: str) -> bool:
        """End the session; False when there was none."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(BrowserSessionRow).where(
                    BrowserSessionRow.session_hash == _digest(value)
                )
            )
            return bool(result.rowcount)

    async def purge_expired(self, now: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(BrowserSessionRow).where(BrowserSessionRow.expires_at <= now)
            )
            return result.rowcount


class PendingRequests:
    """Validated authorization requests, kept while the person logs in and
    consents. Each is used once: ``take`` removes it as it reads it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(self, params: dict[str, Any], expires_at: int) -> str:
        """Store the request and return its id."""
        request_id = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            session.add(
                AuthorizationRequestRow(
                    request_id=_digest(request_id),
                    params=json.dumps(params, separators=(",", ":")),
                    expires_at=expires_at,
                )
            )
        return request_id

    async def get(self, request_id: str, now: int) -> dict[str, Any] | None:
        async with self._sessions() as session:
            row = await session.get(AuthorizationRequestRow, _digest(request_id))
            if row is None or row.expires_at <= now:
                return None
            params: dict[str, Any] = json.loads(row.params)
            return params

    async def update(self, request_id: str, params: dict[str, Any]) -> None:
        """Replace the stored request's parameters, keeping its expiry."""
        async with self._sessions.begin() as session:
            row = await session.get(AuthorizationRequestRow, _digest(request_id))
            if row is not None:
                row.params = json.dumps(params, separators=(",", ":"))

    async def take(self, request_id: str, now: int) -> dict[str, Any] | None:
        """Remove the request and return it; None if it was gone or expired.
        Of two concurrent takes, one gets the request: one code per request."""
        key = _digest(request_id)
        async with self._sessions.begin() as session:
            row = await session.get(AuthorizationRequestRow, key)
            if row is None:
                return None
            result = await session.execute(
                delete(AuthorizationRequestRow).where(
                    AuthorizationRequestRow.request_id == key
                )
            )
            if result.rowcount != 1 or row.expires_at <= now:
                return None
            params: dict[str, Any] = json.loads(row.params)
            return params

    async def purge_expired(self, now: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(AuthorizationRequestRow).where(
                    AuthorizationRequestRow.expires_at <= now
                )
            )
            return result.rowcount
