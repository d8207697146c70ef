"""What the browser endpoints hold: the stores of sessions, pending
requests, consents and codes, and the login check's parts."""

from __future__ import annotations

from dataclasses import dataclass

from tessera.config import Settings
from tessera.core.limits import TrustedProxies
from tessera.core.users import LoginThrottle, Passwords, User
from tessera.node import Node
from tessera.server.limits_redis import open_login_throttle
from tessera.store.browser_sessions import (
    BrowserSession,
    BrowserSessions,
    PendingRequests,
)
from tessera.store.codes import AuthorizationCodes
from tessera.store.consents import ConsentRepository
from tessera.store.users import UserRepository

# How long a validated request waits for the person to log in and consent.
PENDING_REQUEST_TTL = 600


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person a browser's session cookie names."""

    cookie: str
    session: BrowserSession
    user: User


@dataclass
class BrowserState:
    sessions: BrowserSessions
    requests: PendingRequests
    consents: ConsentRepository
    codes: AuthorizationCodes
    users: UserRepository
    passwords: Passwords
    proxies: TrustedProxies
    throttle: LoginThrottle

    @classmethod
    def open(cls, settings: Settings, node: Node) -> BrowserState:
        sessions = node.sessions
        return cls(
            sessions=BrowserSessions(sessions),
            requests=PendingRequests(sessions),
            consents=ConsentRepository(sessions),
            codes=AuthorizationCodes(sessions),
            users=UserRepository(sessions),
            passwords=Passwords(),
            proxies=TrustedProxies(settings.trusted_proxies),
            throttle=open_login_throttle(settings, node.audit),
        )

    async def signed_in(self, cookie: str | None, now: int) -> SignedIn | None:
        """Who the cookie's session is for; None when there is no live
        session, or its user has since been disabled or deleted."""
        if cookie is None:
            return None
        session = await self.sessions.get(cookie, now)
        if session is None:
            return None
        user = await self.users.get(session.user_id)
        if user is None or user.disabled:
            return None
        return SignedIn(cookie, session, user)

    async def purge_expired(self, now: int) -> None:
        await self.sessions.purge_expired(now)
        await self.requests.purge_expired(now)

    async def close(self) -> None:
        await self.throttle.close()
