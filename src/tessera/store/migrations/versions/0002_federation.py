"""federation: trust policies, client key authentication, used assertions

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "auth_method",
                sa.String(length=32),
                nullable=False,
                server_default="client_secret",
            )
        )
        batch_op.add_column(sa.Column("jwks", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("jwks_uri", sa.Text(), nullable=True))

    op.create_table(
        "trust_policies",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=True),
        sa.Column("pinned_jwks", sa.Text(), nullable=True),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("audiences", sa.Text(), nullable=False),
        sa.Column("max_ttl", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "used_assertions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("used_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_used_assertions_expires_at"), ["expires_at"], unique=False
        )
    op.bulk_insert(
        sa.table("state_versions", sa.column("name"), sa.column("version")),
        [{"name": "policies", "version": 0}],
    )


def downgrade() -> None:
    op.execute("DELETE FROM state_versions WHERE name = 'policies'")
    with op.batch_alter_table("used_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_assertions_expires_at"))
    op.drop_table("used_assertions")
    op.drop_table("trust_policies")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("jwks_uri")
        batch_op.drop_column("jwks")
        batch_op.drop_column("auth_method")
