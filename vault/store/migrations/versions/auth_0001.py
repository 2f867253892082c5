"""Sign-in: single-use SIWE nonces.

Revision ID: auth_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0001"
down_revision = "0001_base"
branch_labels = ("auth",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("siwe_nonces")
