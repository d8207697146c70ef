"""Storage: SQLAlchemy models, Alembic migrations, one repository per
artefact. SQLite by default; PostgreSQL through the same code."""
