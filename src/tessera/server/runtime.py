"""Everything a running node holds, built once at start-up from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tessera.config import Settings
from tessera.core.client_assertion import ClientAssertions
from tessera.core.code_grant import AUTHORIZATION_CODE, AuthorizationCodeGrant
from tessera.core.exchange import FederatedGrants
from tessera.core.id_tokens import ID_TOKEN_ALG, IdTokens
from tessera.core.introspection import TokenInspector
from tessera.core.limits import Guard
from tessera.core.minting import AccessTokenMinter
from tessera.core.refresh import REFRESH_TOKEN, RefreshTokenGrant, RefreshTokens
from tessera.core.token_endpoint import TokenEndpoint, UserGrant
from tessera.core.user_tokens import UserTokens
from tessera.core.userinfo import UserInfo
from tessera.federation.client_keys import ClientKeySources
from tessera.federation.external_token import ExternalIssuers
from tessera.keys.manager import KeyManager
from tessera.node import AuditSink, Node, open_node
from tessera.server.browser.state import BrowserState
from tessera.server.client_snapshot import ClientSnapshot
from tessera.server.limits_redis import open_guard
from tessera.server.metrics import Metrics
from tessera.server.policy_snapshot import PolicySnapshot
from tessera.store.changes import versions
from tessera.store.clients import ClientRepository
from tessera.store.codes import AuthorizationCodes
from tessera.store.notifications import ChangeListener, asyncpg_dsn
from tessera.store.policies import PolicyRepository
from tessera.store.refresh_tokens import RefreshTokenRepository
from tessera.store.revocations import RevocationRepository
from tessera.store.used_assertions import UsedAssertionRepository
from tessera.store.users import UserRepository

logger = logging.getLogger("tessera.server")


@dataclass
class Runtime:
    settings: Settings
    node: Node
    audit: AuditSink
    clients: ClientSnapshot
    keys: KeyManager
    minter: AccessTokenMinter
    token_endpoint: TokenEndpoint
    inspector: TokenInspector
    revocations: RevocationRepository
    clock: Callable[[], float]
    pepper: bytes
    metrics: Metrics
    guard: Guard
    policies: PolicySnapshot
    external: ExternalIssuers
    used_assertions: UsedAssertionRepository
    # Sessions, pending authorization requests, consents, logins.
    browser: BrowserState
    id_tokens: IdTokens
    refresh_tokens: RefreshTokenRepository
    userinfo: UserInfo
    versions: dict[str, int] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Set by a change notification (or a lost listener): reload now.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def refresh(self) -> None:
        """Pick up what any process changed: reload the clients or the keys
        when their version moved. Runs every ``change_poll_interval`` seconds.
        The versions are read first, so a change racing the reload is seen
        again on the next run rather than lost."""
        reached_at = self.clock()
        current = await versions(self.node.sessions)
        if current.get("clients") != self.versions.get("clients"):
            await self.clients.reload()
        if current.get("policies") != self.versions.get("policies"):
            await self.policies.reload()
        if current.get("keys") != self.versions.get("keys"):
            self.minter.keyring = await self.keys.load()
            self.inspector.keyring = self.minter.keyring
        self.versions = current
        self.clients.confirm(reached_at)

    async def _follow_changes(self) -> None:
        """Refresh on every change notification, and at least every
        ``change_poll_interval`` seconds in case one was lost."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.changed.wait(), self.settings.change_poll_interval
                )
            self.changed.clear()
            try:
                await self.refresh()
            except Exception as error:  # the store is down; the next run retries
                logger.warning("refresh failed: %s", type(error).__name__)

    async def check_store(self) -> None:
        """Raise unless the database answers a trivial query within two
        seconds: what ``/readyz`` asks before saying the node can serve."""
        async with asyncio.timeout(2):
            async with self.node.engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")

    async def _every(self, seconds: float, job: Callable[[], object]) -> None:
        """Run ``job`` now, then every ``seconds``: a node that was down when
        a rotation fell due rotates as it starts."""
        while True:
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as error:  # keep the loop alive; the next run retries
                logger.warning("background job failed: %s", type(error).__name__)
            await asyncio.sleep(seconds)

    async def _maintain(self) -> None:
        """Rotate keys that are due; forget revocations of tokens that have
        expired anyway, client assertions that can no longer be replayed, and
        expired browser sessions and pending authorization requests."""
        if await self.keys.rotate_due():
            await self.refresh()
        await self.revocations.purge_expired(int(self.clock()))
        await self.used_assertions.purge_expired(int(self.clock()))
        await self.browser.purge_expired(int(self.clock()))
        await self.refresh_tokens.purge_expired(int(self.clock()))

    def start_background(self) -> None:
        self.tasks.append(asyncio.create_task(self._follow_changes()))
        engine = self.node.engine
        if engine.dialect.name == "postgresql":
            listener = ChangeListener(
                asyncpg_dsn(engine.url),
                self.changed,
                retry=self.settings.change_poll_interval,
            )
            self.tasks.append(asyncio.create_task(listener.run()))
        maintenance = min(60.0, self.settings.key_rotation_interval / 4)
        self.tasks.append(asyncio.create_task(self._every(maintenance, self._maintain)))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.guard.close()
        await self.browser.close()
        await self.external.aclose()
        await self.node.close()


async def start(settings: Settings, clock: Callable[[], float] = time.time) -> Runtime:
    """Open the store, migrate it, check the master key, and load the keys.

    Raises MasterKeyError, never making new keys, when the master key does
    not match the database."""
    metrics = Metrics()
    node = await open_node(settings, clock, wrap_audit=metrics.metered_audit)
    try:
        return await _assemble(settings, node, clock, metrics)
    except BaseException:
        await node.close()
        raise


async def _assemble(
    settings: Settings, node: Node, clock: Callable[[], float], metrics: Metrics
) -> Runtime:
    # ID tokens are always RS256 (see tessera.core.id_tokens).
    await node.keys.ensure({settings.default_signing_alg, ID_TOKEN_ALG})
    keyring = await node.keys.load()
    sessions, audit, keys = node.sessions, node.audit, node.keys
    clients = ClientSnapshot(
        ClientRepository(sessions),
        clock=clock,
        stale_after=settings.store_outage_grace,
        on_hit=metrics.client_hit.inc,
        on_miss=metrics.client_miss.inc,
    )
    metrics.known_clients = clients
    minter = AccessTokenMinter(
        settings.issuer,
        keyring,
        default_alg=settings.default_signing_alg,
        default_ttl=settings.default_token_ttl,
        max_ttl=settings.max_token_ttl,
    )
    # private_key_jwt: the clients' public keys, and the assertions used.
    # Used assertions live in the database, the one store every node shares
    # for certain: a cache in front of it could let a replay through at a
    # node that cannot reach the cache.
    used_assertions = UsedAssertionRepository(sessions)
    assertions = ClientAssertions(
        settings.issuer, ClientKeySources(clock), used_assertions
    )
    guard = open_guard(settings, audit, assertions=assertions)
    policies = PolicySnapshot(PolicyRepository(sessions))
    external = ExternalIssuers(
        clock=clock, refresh_interval=settings.external_jwks_refetch_interval
    )
    federated = FederatedGrants(policies, external, minter, audit=audit, clock=clock)
    revocations = RevocationRepository(sessions)
    users = UserRepository(sessions)
    id_tokens = IdTokens(
        settings.issuer, lambda: minter.keyring, max_ttl=settings.max_token_ttl
    )
    user_tokens = UserTokens(
        minter,
        id_tokens,
        users,
        fallback_audience=settings.issuer + "/oauth2/userinfo",
        audit=audit,
    )
    refresh_tokens = RefreshTokenRepository(sessions)
    refresh = RefreshTokens(
        refresh_tokens,
        ttl=settings.refresh_token_ttl,
        reuse_grace=settings.refresh_reuse_grace,
        audit=audit,
    )
    user_grants: dict[str, UserGrant] = {
        AUTHORIZATION_CODE: AuthorizationCodeGrant(
            AuthorizationCodes(sessions), user_tokens, refresh, revocations, audit=audit
        ),
        REFRESH_TOKEN: RefreshTokenGrant(refresh, user_tokens),
    }
    endpoint = TokenEndpoint(
        clients,
        minter,
        pepper=node.pepper,
        audit=audit,
        guard=guard,
        federated=federated,
        user_grants=user_grants,
        clock=clock,
    )
    inspector = TokenInspector(
        settings.issuer,
        keyring,
        revocations,
        clients,
        policies=policies,
        refresh=refresh,
        clock=clock,
    )
    runtime = Runtime(
        settings=settings,
        node=node,
        audit=audit,
        clients=clients,
        keys=keys,
        minter=minter,
        token_endpoint=endpoint,
        inspector=inspector,
        revocations=revocations,
        clock=clock,
        pepper=node.pepper,
        metrics=metrics,
        guard=guard,
        policies=policies,
        external=external,
        used_assertions=used_assertions,
        browser=BrowserState.open(settings, node),
        id_tokens=id_tokens,
        refresh_tokens=refresh_tokens,
        userinfo=UserInfo(inspector, users),
    )
    await runtime.refresh()
    return runtime
