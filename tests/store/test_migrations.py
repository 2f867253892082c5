"""The Alembic migrations build exactly the schema the models declare, on both backends.

A table or column added to a model without a migration (or the other way round) would
work in tests that create tables from the models and fail on a real upgrade; this
compares the migrated database with the models the way ``alembic revision
--autogenerate`` would.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import vault.store.access_models
import vault.store.audit_models
import vault.store.auth_models
import vault.store.biometric_models
import vault.store.record_models  # noqa: F401  (every model registers on Base.metadata)
from vault.store.models import Base


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
    assert "biometric_staged_templates" in Base.metadata.tables
