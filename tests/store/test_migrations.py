from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tessera.store import database
from tessera.store.changes import versions
from tessera.store.models import Base

TABLES = {
    "alembic_version",
    "authorization_codes",
    "authorization_requests",
    "browser_sessions",
    "clients",
    "consents",
    "meta",
    "refresh_tokens",
    "revoked_tokens",
    "signing_keys",
    "state_versions",
    "trust_policies",
    "used_assertions",
    "users",
}


def _schema_differences(connection: Connection, metadata: MetaData) -> list[Any]:
    return compare_metadata(MigrationContext.configure(connection), metadata)


async def _table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names)


async def _revision(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return (
            await connection.execute(text("SELECT version_num FROM alembic_version"))
        ).scalar_one()


async def test_migrate_creates_the_schema_at_head(engine: AsyncEngine) -> None:
    await database.migrate(engine)

    head = ScriptDirectory.from_config(database.alembic_config()).get_current_head()
    assert await _table_names(engine) == TABLES
    assert await _revision(engine) == head
    assert await versions(database.sessions(engine)) == {
        "clients": 0,
        "keys": 0,
        "policies": 0,
        "revocations": 0,
        "users": 0,
    }


async def test_migrate_twice_changes_nothing(engine: AsyncEngine) -> None:
    await database.migrate(engine)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE state_versions SET version = 7 WHERE name = 'keys'")
        )

    await database.migrate(engine)

    assert await versions(database.sessions(engine)) == {
        "clients": 0,
        "keys": 7,
        "policies": 0,
        "revocations": 0,
        "users": 0,
    }


async def test_downgrade_to_base_removes_every_table(engine: AsyncEngine) -> None:
    await database.migrate(engine)

    def downgrade(connection: Connection) -> None:
        config = database.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with engine.begin() as connection:
        await connection.run_sync(downgrade)

    assert await _table_names(engine) == {"alembic_version"}


async def test_models_match_the_migrated_schema(engine: AsyncEngine) -> None:
    await database.migrate(engine)

    async with engine.connect() as connection:
        differences = await connection.run_sync(_schema_differences, Base.metadata)

    assert differences == []


async def test_drift_check_sees_a_column_missing_from_the_migrations(
    engine: AsyncEngine,
) -> None:
    await database.migrate(engine)
    drifted = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["clients"].append_column(Column("extra", Integer))

    async with engine.connect() as connection:
        differences = await connection.run_sync(_schema_differences, drifted)

    assert [(kind, table, column.name) for kind, _, table, column in differences] == [
        ("add_column", "clients", "extra")
    ]
