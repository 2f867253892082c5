"""Biometric gate: the staged template of a re-enrollment (a second template slot).

Revision ID: biometrics_0002
Revises: biometrics_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "biometrics_0002"
down_revision = "biometrics_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "biometric_staged_templates",
        sa.Column("handle", sa.String(128), primary_key=True),
        sa.Column("template_id", sa.String(32), nullable=False, unique=True),
        sa.Column("scheme", sa.String(64), nullable=False),
        sa.Column("params", sa.String(64), nullable=False),
        sa.Column("salt", sa.LargeBinary(16), nullable=False),
        sa.Column("commitment", sa.LargeBinary(32), nullable=False),
        sa.Column("helper_nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("helper_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("signing_address", sa.String(42), nullable=False),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("biometric_staged_templates")
