"""Direct SQLite reads of the hot path: the same rows as the engine's, never stale, never
writing. On a real migrated SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, create_engine, insert, select

from vault.store.access_models import PatientAccountRow
from vault.store.database import make_engine
from vault.store.migrate import upgrade
from vault.store.prepared import SqliteReads, is_sqlite_file

ACCOUNTS = PatientAccountRow.__table__
BY_HANDLE = select(
    ACCOUNTS.c.handle, ACCOUNTS.c.controller, ACCOUNTS.c.created_at, ACCOUNTS.c.deleted_at
).where(ACCOUNTS.c.handle == bindparam("handle"))


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'vault.db'}")
    upgrade(engine)
    return engine


def _add(engine: Engine, handle: str, deleted_at: datetime | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(PatientAccountRow),
            {
                "handle": handle,
                "record_patient_id": "rec_" + handle,
                "chain_patient_id": "0x" + handle.encode().hex().ljust(64, "0"),
                "controller": "0x" + "cd" * 20,
                "created_at": datetime(2026, 11, 24, 7, 1, 2, 345678),
                "deleted_at": deleted_at,
            },
        )


def test_rows_read_as_the_engine_reads_them(sqlite_engine: Engine) -> None:
    _add(sqlite_engine, "pat_a", deleted_at=datetime(2026, 11, 25, 1, 2, 3, 4))
    _add(sqlite_engine, "pat_b")
    query = SqliteReads(sqlite_engine).prepare(BY_HANDLE)
    for handle in ("pat_a", "pat_b"):
        with sqlite_engine.connect() as conn:
            expected = conn.execute(BY_HANDLE, {"handle": handle}).one()
        row = query.first(handle=handle)
        assert tuple(row) == tuple(expected)  # datetimes parsed by the column's processor
        assert row.created_at == datetime(2026, 11, 24, 7, 1, 2, 345678)
        assert row._fields == ("handle", "controller", "created_at", "deleted_at")
    assert query.first(handle="pat_missing") is None


def test_a_commit_is_seen_by_the_next_read(sqlite_engine: Engine) -> None:
    query = SqliteReads(sqlite_engine).prepare(BY_HANDLE)
    assert query.first(handle="pat_a") is None  # this thread's connection now exists
    _add(sqlite_engine, "pat_a")  # committed through another connection
    assert query.first(handle="pat_a") is not None


def test_reads_never_write(sqlite_engine: Engine) -> None:
    reads = SqliteReads(sqlite_engine)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reads.connection().execute("DELETE FROM patient_accounts")


def test_each_thread_reads_on_its_own_connection(sqlite_engine: Engine) -> None:
    _add(sqlite_engine, "pat_a")
    reads = SqliteReads(sqlite_engine)
    query = reads.prepare(BY_HANDLE)
    seen: list[tuple[sqlite3.Connection, str]] = []

    def read() -> None:
        seen.append((reads.connection(), query.first(handle="pat_a").handle))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {handle for _, handle in seen} == {"pat_a"}
    assert len({id(connection) for connection, _ in seen}) == 3


def test_only_sqlite_files_qualify(tmp_path: Path) -> None:
    assert is_sqlite_file(create_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    assert not is_sqlite_file(create_engine("sqlite://"))
    assert not is_sqlite_file(create_engine("sqlite:///:memory:"))
    with pytest.raises(ValueError):
        SqliteReads(create_engine("sqlite://"))
