"""Access trail: one schema on every database; the sequence number is BIGINT again on SQLite.

audit_0002 made it SQLite's ``INTEGER PRIMARY KEY`` (the rowid) for a loopback benchmark,
so SQLite and PostgreSQL had different key types. This puts SQLite back on the type the
model and PostgreSQL have (Alembic's batch mode copies every row: about 6 s for a million
entries on these two busy cores, once, at the first start after the upgrade); on
PostgreSQL, where the column has always been ``BIGINT``, it changes nothing.

Revision ID: audit_0003
Revises: audit_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "audit_0003"
down_revision = "audit_0002"
branch_labels = None
depends_on = None


def _seq_type(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # already BIGINT: audit_0002 touched SQLite only
    with op.batch_alter_table("audit_entries", recreate="always") as batch:
        batch.alter_column(
            "seq", existing_type=old, type_=new, existing_nullable=False, autoincrement=False
        )


def upgrade() -> None:
    _seq_type(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _seq_type(sa.BigInteger(), sa.Integer())
