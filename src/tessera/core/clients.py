"""The client as the protocol core sees it, and where the core finds one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    secret_hash: bytes
    previous_secret_hash: bytes | None
    previous_secret_expires_at: int | None
    scopes: frozenset[str]
    default_scopes: frozenset[str]
    audiences: tuple[str, ...]
    grant_types: frozenset[str]
    token_ttl: int | None
    signing_alg: str | None
    disabled: bool
    # A protected resource that may introspect tokens meant for one of its
    # audiences (RFC 7662 §4); every client may introspect its own tokens.
    may_introspect: bool = False
    # How it authenticates: "client_secret" (basic or post), or
    # "private_key_jwt" (RFC 7523 §2.2) with its public keys given inline
    # (``jwks``, a JWK Set as JSON text) or at ``jwks_uri``.
    auth_method: str = "client_secret"
    jwks: str | None = None
    jwks_uri: str | None = None
    # For the authorization code flow: where codes and logouts may be sent,
    # each compared exactly (RFC 9700 §2.1; RFC 8252 §7.3 for loopback).
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()

    @classmethod
    def register(
        cls,
        client_id: str,
        secret_hash: bytes,
        *,
        scopes: frozenset[str],
        audiences: tuple[str, ...],
        default_scopes: frozenset[str] | None = None,
        grant_types: frozenset[str] = frozenset({"client_credentials"}),
        token_ttl: int | None = None,
        signing_alg: str | None = None,
        may_introspect: bool = False,
        redirect_uris: tuple[str, ...] = (),
        post_logout_redirect_uris: tuple[str, ...] = (),
    ) -> Client:
        """A new, enabled client; without default scopes, all its scopes."""
        return cls(
            client_id=client_id,
            secret_hash=secret_hash,
            previous_secret_hash=None,
            previous_secret_expires_at=None,
            scopes=scopes,
            default_scopes=scopes if default_scopes is None else default_scopes,
            audiences=audiences,
            grant_types=grant_types,
            token_ttl=token_ttl,
            signing_alg=signing_alg,
            disabled=False,
            may_introspect=may_introspect,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
        )

    def secret_hashes(self, now: float) -> tuple[bytes, bytes | None]:
        previous = self.previous_secret_hash
        expires = self.previous_secret_expires_at
        if previous is not None and (expires is None or expires <= now):
            previous = None
        return self.secret_hash, previous


class ClientDirectory(Protocol):
    async def get(self, client_id: str) -> Client | None:
        """The client, or None when no such client exists. May be served
        from a cache; raises when the store cannot answer."""
        ...
