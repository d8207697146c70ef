"""``tessera users revoke-consent``, and the consent repository under it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.core.users import new_user
from tessera.store.consents import Consent, ConsentRepository
from tessera.store.users import UserRepository
from tests.cli.conftest import Tessera, make_tessera


@pytest.fixture(scope="module")
def tessera(tmp_path_factory: pytest.TempPathFactory) -> Tessera:
    return make_tessera(tmp_path_factory, "cli-consents")


def _grant(tessera: Tessera, username: str, *grants: tuple[str, str]) -> str:
    """Create the user and the consents (client id, scope); return the id."""
    user = new_user(username)

    async def go(sessions: async_sessionmaker[AsyncSession]) -> None:
        await UserRepository(sessions).create(user, "$argon2id$unused")
        consents = ConsentRepository(sessions)
        for number, (client_id, scope) in enumerate(grants):
            await consents.remember(
                user.user_id, client_id, frozenset(scope.split()), 1000 + number
            )

    asyncio.run(tessera._with_store(go))
    return user.user_id


def _consents(tessera: Tessera, user_id: str) -> list[Consent]:
    return asyncio.run(
        tessera._with_store(lambda s: ConsentRepository(s).list_for_user(user_id))
    )


def test_consents_are_united_and_listed(tessera: Tessera) -> None:
    user_id = _grant(
        tessera, "lin", ("web", "openid read"), ("web", "email"), ("cli", "openid")
    )

    assert _consents(tessera, user_id) == [
        Consent("cli", frozenset({"openid"}), 1002),
        Consent("web", frozenset({"openid", "read", "email"}), 1001),
    ]


def test_revoke_consent(tessera: Tessera) -> None:
    user_id = _grant(tessera, "mo", ("web", "openid"), ("other", "openid"))

    result = tessera("users", "revoke-consent", "Mo", "web")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "consent of user mo for client web revoked\n"
    assert [c.client_id for c in _consents(tessera, user_id)] == ["other"]
    event = tessera.audit_events()[-1]
    assert {k: v for k, v in event.items() if k != "ts"} == {
        "event": "consent.revoked",
        "user_id": user_id,
        "username": "mo",
        "client_id": "web",
    }


def test_revoke_missing_consent_fails(tessera: Tessera) -> None:
    _grant(tessera, "noor")

    result = tessera("users", "revoke-consent", "noor", "web")

    assert result.returncode == 1
    assert result.stderr == "Error: user noor has no consent for client web\n"
