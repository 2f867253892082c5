"""Biometric gate: protected templates and failed-attempt counters.

Revision ID: biometrics_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "biometrics_0001"
down_revision = "0001_base"
branch_labels = ("biometrics",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "biometric_templates",
        sa.Column("handle", sa.String(128), primary_key=True),
        sa.Column("template_id", sa.String(32), nullable=False, unique=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("scheme", sa.String(64), nullable=False),
        sa.Column("params", sa.String(64), nullable=False),
        sa.Column("salt", sa.LargeBinary(16), nullable=False),
        sa.Column("commitment", sa.LargeBinary(32), nullable=False),
        sa.Column("helper_nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("helper_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("signing_address", sa.String(42), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "biometric_attempts",
        sa.Column("handle", sa.String(128), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("biometric_attempts")
    op.drop_table("biometric_templates")
