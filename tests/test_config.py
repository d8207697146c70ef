"""Settings: environment, an optional TOML file, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tessera.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TESSERA_"):
            monkeypatch.delenv(name)


def test_defaults_give_a_loopback_issuer_and_sqlite_in_the_data_dir() -> None:
    settings = Settings()

    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.resolved_database_url == "sqlite+aiosqlite:///var/tessera.db"
    assert settings.resolved_master_key_file == Path("var/master.key")
    assert (settings.default_token_ttl, settings.max_token_ttl) == (900, 3600)
    assert settings.default_signing_alg == "ES256"


def test_environment_overrides_and_the_issuer_follows_the_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA_PORT", "9100")
    monkeypatch.setenv("TESSERA_MAX_TOKEN_TTL", "600")

    settings = Settings()

    assert settings.issuer == "http://127.0.0.1:9100"
    assert settings.max_token_ttl == 600


def test_a_toml_file_fills_in_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text('issuer = "https://id.example.com/"\nmax_token_ttl = 1200\n')
    monkeypatch.setenv("TESSERA_CONFIG", str(config))
    monkeypatch.setenv("TESSERA_MAX_TOKEN_TTL", "300")

    settings = Settings()

    assert settings.issuer == "https://id.example.com"  # no trailing slash
    assert settings.max_token_ttl == 300


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("TESSERA_MAX_TOKEN_TTL", "soon", id="not-a-number"),
        pytest.param("TESSERA_DEFAULT_SIGNING_ALG", "HS256", id="alg-off-the-list"),
        pytest.param("TESSERA_ISSUER", "https://id.example/?x=1", id="issuer-query"),
        pytest.param("TESSERA_PORT", "70000", id="port-out-of-range"),
    ],
)
def test_a_bad_setting_stops_the_command_without_echoing_it(
    tmp_path: Path, name: str, value: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tessera", "clients", "list"],
        env={"PATH": "/usr/bin:/bin", "TESSERA_DATA_DIR": str(tmp_path), name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: invalid settings: ")
    assert value not in result.stderr
    assert not (tmp_path / "tessera.db").exists()


def test_trusted_proxies_come_as_a_json_list_of_addresses_and_networks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA_TRUSTED_PROXIES", '["127.0.0.1", "10.0.0.0/8"]')

    assert Settings().trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]

    monkeypatch.setenv("TESSERA_TRUSTED_PROXIES", '["10.0.0.1", "lb.internal"]')
    with pytest.raises(ValueError, match="'lb.internal' is not an IP address"):
        Settings()
