"""Patient accounts and access requests.

Revision ID: access_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "access_0001"
down_revision = "0001_base"
branch_labels = ("access",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_accounts",
        sa.Column("handle", sa.String(64), primary_key=True),
        sa.Column("record_patient_id", sa.String(64), nullable=False, unique=True),
        sa.Column("chain_patient_id", sa.String(66), nullable=False, unique=True),
        sa.Column("controller", sa.String(42), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "access_requests",
        sa.Column("request_id", sa.String(40), primary_key=True),
        sa.Column("patient_handle", sa.String(64), nullable=False, index=True),
        sa.Column("provider", sa.String(42), nullable=False, index=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("access_requests")
    op.drop_table("patient_accounts")
