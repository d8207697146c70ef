"""Settings: one typed object, built once from ``TESSERA_*`` variables and an
optional TOML file named by ``TESSERA_CONFIG``, then passed down."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SigningAlg = Literal["ES256", "RS256", "PS256", "EdDSA"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="forbid")

    # Empty means http://HOST:PORT, for a node on loopback.
    issuer: str = ""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    data_dir: Path = Path("var")
    # Empty means SQLite at data_dir/tessera.db.
    database_url: str = ""

    # Base64url of 32 random bytes. When unset, data_dir/master.key is used,
    # and created with mode 0600 on first start.
    master_key: SecretStr | None = None
    master_key_file: Path | None = None

    default_token_ttl: int = Field(900, ge=1)
    max_token_ttl: int = Field(3600, ge=1)
    default_signing_alg: SigningAlg = "ES256"

    key_rotation_interval: int = Field(7 * 86400, ge=60)
    # A new key is published this long before it signs, so every cached JWKS
    # (see jwks_max_age) already holds it when its first token arrives.
    key_publish_ahead: int = Field(600, ge=0)
    jwks_max_age: int = Field(300, ge=0)

    # Empty: no Redis; rate limits and lockouts then count per node.
    redis_url: str = ""

    # How often a node looks for changes written by another process. On
    # PostgreSQL, LISTEN/NOTIFY brings them sooner; this poll is the fallback.
    change_poll_interval: float = Field(1.0, gt=0)
    # How long a node that cannot reach the database keeps issuing tokens to
    # the clients it holds in memory. After that, issuance answers 503 too.
    store_outage_grace: float = Field(300.0, ge=0)

    # Token-endpoint rate limits: sustained requests per second and burst,
    # per client id and per source address. 0 turns a limit off.
    rate_limit_per_client: float = Field(100.0, ge=0)
    rate_limit_per_client_burst: int = Field(200, ge=1)
    rate_limit_per_source: float = Field(200.0, ge=0)
    rate_limit_per_source_burst: int = Field(400, ge=1)
    # Addresses of load balancers whose X-Forwarded-For is believed.
    trusted_proxies: list[str] = Field(default_factory=list)

    # Workload identity federation: at most one refetch of an external
    # issuer's keys per this many seconds when a token names an unknown kid,
    # so forged kids cannot turn into a flood of requests to the issuer.
    external_jwks_refetch_interval: float = Field(10.0, ge=1)

    # People: browser sessions, authorization codes, refresh tokens.
    session_lifetime: int = Field(8 * 3600, ge=60)
    authorization_code_ttl: int = Field(60, ge=10, le=600)
    refresh_token_ttl: int = Field(30 * 86400, ge=60)
    # A refresh token used again this soon after its rotation gets a new
    # token too (two tabs refreshing at once); later, reuse revokes the
    # whole family as a theft (RFC 9700 §4.14.2).
    refresh_reuse_grace: float = Field(10.0, ge=0, le=60)
    # Failed logins, per account and per source address: slowed after the
    # first threshold, locked out after the second.
    login_failure_window: int = Field(900, ge=1)
    login_slowdown_after: int = Field(3, ge=1)
    login_lockout_after: int = Field(10, ge=1)
    login_lockout_seconds: int = Field(900, ge=1)

    # Failed client authentication, counted per client id over the window:
    # after the first threshold each failure is answered slower, after the
    # second the id is locked out (even with the right secret) for a while.
    auth_failure_window: int = Field(300, ge=1)
    auth_slowdown_after: int = Field(5, ge=1)
    auth_lockout_after: int = Field(20, ge=1)
    auth_lockout_seconds: int = Field(300, ge=1)
    max_body_bytes: int = Field(16 * 1024, ge=1024)
    # Where audit events (JSON lines) go: "-" for stderr, or a file path.
    audit_log: str = "-"
    log_level: str = "info"

    @field_validator("issuer")
    @classmethod
    def _issuer_has_no_trailing_slash(cls, value: str) -> str:
        # RFC 8414 §2: the issuer is an https URL without query or fragment;
        # plain http is tolerated for loopback development.
        if "?" in value or "#" in value:
            raise ValueError("the issuer URL must have no query or fragment")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    def model_post_init(self, context: object) -> None:
        if not self.issuer:
            self.issuer = f"http://{self.host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("TESSERA_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, Path(config_file)))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'tessera.db'}"

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"
