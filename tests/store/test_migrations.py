"""The Alembic migrations build exactly the schema the models declare, on both backends.

A table or column added to a model without a migration (or the other way round) would
work in tests that create tables from the models and fail on a real upgrade; this
compares the migrated database with the models the way ``alembic revision
--autogenerate`` would.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Connection, Engine, inspect

import vault.store.access_models
import vault.store.audit_models
import vault.store.auth_models
import vault.store.biometric_models
import vault.store.record_models  # noqa: F401  (every model registers on Base.metadata)
from vault.audit.log import AuditEvent, AuditLog
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import alembic_config, upgrade
from vault.store.models import Base


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
    assert "biometric_staged_templates" in Base.metadata.tables


def test_audit_migrations_keep_a_populated_log_and_end_on_one_key_type(tmp_path: Path) -> None:
    """A log written under audit_0002 (SQLite's rowid as the key) survives audit_0003's
    rebuild entry for entry, still verifies, appends go on where it ended, and the key is
    BIGINT with its own index, as on PostgreSQL."""
    engine = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "audit_0002")
    log = AuditLog(session_factory=make_session_factory(engine))
    for n in range(5):
        log.append(
            AuditEvent(patient_id=f"p{n % 2}", actor="0xabc", action="read", outcome="allowed")
        )
    before = [(e.seq, e.entry_hash) for e in log.entries()]
    with engine.connect() as conn:
        assert _autoindexes(conn) == []  # audit_0002: the key is the rowid

    upgrade(engine)
    log = AuditLog(session_factory=make_session_factory(engine))
    assert [(e.seq, e.entry_hash) for e in log.entries()] == before
    assert log.verify_chain() == 5
    log.append(AuditEvent(patient_id="p0", actor="0xabc", action="read", outcome="denied"))
    assert [e.seq for e in log.entries()] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in log.entries(patient_id="p1")] == [2, 4]
    with engine.connect() as conn:
        assert _autoindexes(conn) == ["sqlite_autoindex_audit_entries_1"]
        columns = {c["name"]: c["type"] for c in inspect(conn).get_columns("audit_entries")}
        assert isinstance(columns["seq"], BigInteger)
    command.downgrade(config, "audit_0002")  # and back: the rowid key again, entries kept
    with engine.connect() as conn:
        assert _autoindexes(conn) == []
    assert [(e.seq, e.entry_hash) for e in log.entries()][:5] == before


def test_audit_seq_is_bigint_on_every_database(engine: Engine) -> None:
    with engine.connect() as conn:
        columns = {c["name"]: c["type"] for c in inspect(conn).get_columns("audit_entries")}
    assert isinstance(columns["seq"], BigInteger)


def _autoindexes(conn: Connection) -> list[str]:
    return list(
        conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE tbl_name = 'audit_entries'"
            " AND name LIKE 'sqlite_autoindex%'"
        ).scalars()
    )
