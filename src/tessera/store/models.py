"""Tables. Times are integer Unix seconds, the same on every backend."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ClientRow(Base):
    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # HMAC-SHA-256 of the secret under the server's pepper, never the secret.
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The secret replaced by the last rotation, valid until its deadline.
    previous_secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    previous_secret_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # Space-separated lists, as on the wire.
    scopes: Mapped[str] = mapped_column(Text, default="")
    default_scopes: Mapped[str] = mapped_column(Text, default="")
    audiences: Mapped[str] = mapped_column(Text, default="")
    grant_types: Mapped[str] = mapped_column(Text, default="client_credentials")
    token_ttl: Mapped[int | None] = mapped_column(Integer)
    signing_alg: Mapped[str | None] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    may_introspect: Mapped[bool] = mapped_column(Boolean, default=False)
    # "client_secret", or "private_key_jwt" with keys inline or at a URL.
    auth_method: Mapped[str] = mapped_column(
        String(32), default="client_secret", server_default="client_secret"
    )
    jwks: Mapped[str | None] = mapped_column(Text)
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    # Space-separated, compared exactly (RFC 9700 §2.1).
    redirect_uris: Mapped[str] = mapped_column(Text, default="", server_default="")
    post_logout_redirect_uris: Mapped[str] = mapped_column(
        Text, default="", server_default=""
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class UserRow(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    # argon2id, in the PHC string format (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class BrowserSessionRow(Base):
    """A signed-in browser. The cookie holds a random id; only its SHA-256
    is stored, so a database dump holds no usable session."""

    __tablename__ = "browser_sessions"

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuthorizationRequestRow(Base):
    """A validated authorization request waiting for login or consent."""

    __tablename__ = "authorization_requests"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The request's parameters, as JSON.
    params: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuthorizationCodeRow(Base):
    """An issued code, stored as its SHA-256; single use (``used_at``)."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(36))
    redirect_uri: Mapped[str] = mapped_column(Text)
    # False when the request named no redirect_uri (the client's only one
    # was used): the token request may then leave it out (RFC 6749 §4.1.3).
    redirect_uri_given: Mapped[bool] = mapped_column(Boolean)
    scope: Mapped[str] = mapped_column(Text)
    # S256 challenge; None when the request had none (then no verifier).
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(Text)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    # Set by a second redemption: what the first issued is to be revoked,
    # even if the first records it only afterwards.
    reused_at: Mapped[int | None] = mapped_column(BigInteger)
    # What the redemption issued, revoked if the code is used again
    # (RFC 9700 §4.2.3): the refresh-token family and the access token.
    family_id: Mapped[str | None] = mapped_column(String(64))
    access_token_jti: Mapped[str | None] = mapped_column(String(64))
    access_token_expires_at: Mapped[int | None] = mapped_column(BigInteger)


class ConsentRow(Base):
    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    scopes: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[int] = mapped_column(BigInteger)


class RefreshTokenRow(Base):
    """An opaque refresh token, stored as its SHA-256. Each use rotates it:
    ``rotated_at`` is set and a successor joins the same family."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(36))
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class TrustPolicyRow(Base):
    """Which external issuer's tokens are exchanged for what; see
    tessera.core.federation."""

    __tablename__ = "trust_policies"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(Text)
    # The audience the external token must carry.
    audience: Mapped[str] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(String(32))
    # A JWK Set to use instead of the issuer's discovery, as JSON.
    pinned_jwks: Mapped[str | None] = mapped_column(Text)
    # JSON list of {"claim", "match", "values"}.
    conditions: Mapped[str] = mapped_column(Text)
    # What a match grants; space-separated lists, as on the wire.
    scopes: Mapped[str] = mapped_column(Text, default="")
    audiences: Mapped[str] = mapped_column(Text, default="")
    max_ttl: Mapped[int | None] = mapped_column(Integer)
    # The issued token's sub: a template over the external token's claims.
    subject: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class UsedAssertionRow(Base):
    """A client assertion's jti, kept until the assertion expires, so that
    a replay is refused on every node (RFC 7523 §3)."""

    __tablename__ = "used_assertions"

    # SHA-256 (hex) of the client id and the jti: bounded length.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), index=True)
    # PKCS#8 DER sealed with AES-256-GCM; see tessera.keys.sealing.
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    activates_at: Mapped[int] = mapped_column(BigInteger)


class RevokedTokenRow(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    # Kept until then: after it the token is rejected as expired anyway.
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    revoked_at: Mapped[int] = mapped_column(BigInteger)


class StateVersionRow(Base):
    """A counter per artefact kind, bumped in the same transaction as each
    change, so other processes can tell cheaply that their cache is stale."""

    __tablename__ = "state_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class MetaRow(Base):
    __tablename__ = "meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
