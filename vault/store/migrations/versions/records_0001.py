"""Record store: patients, records, record versions, pending blob writes.

Revision ID: records_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "records_0001"
down_revision = "0001_base"
branch_labels = ("records",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("master_key_version", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_patients_master_key_version", "patients", ["master_key_version"])
    op.create_table(
        "records",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("security_context_id", sa.String(64), nullable=True),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_records_patient_category", "records", ["patient_id", "category"])
    op.create_index("ix_records_security_context_id", "records", ["security_context_id"])
    op.create_table(
        "record_versions",
        sa.Column("record_id", sa.String(64), sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("blob_key", sa.String(200), nullable=True, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("wrapped_data_key", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pending_blobs",
        sa.Column("blob_key", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pending_blobs_created_at", "pending_blobs", ["created_at"])


def downgrade() -> None:
    op.drop_table("pending_blobs")
    op.drop_table("record_versions")
    op.drop_index("ix_records_security_context_id", "records")
    op.drop_index("ix_records_patient_category", "records")
    op.drop_table("records")
    op.drop_index("ix_patients_master_key_version", "patients")
    op.drop_table("patients")
