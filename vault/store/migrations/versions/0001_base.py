"""Base schema: the consent contract's deployment record.

Revision ID: 0001_base
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_deployments",
        sa.Column("chain_id", sa.Integer, primary_key=True),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("block_number", sa.Integer, nullable=False),
        sa.Column("code_hash", sa.String(66), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chain_deployments")
