"""Database backends for the store's tests: SQLite always, PostgreSQL when configured.

Loaded by ``tests/store/conftest.py`` and ``tests/records/conftest.py``. PostgreSQL comes
from ``VAULT_TEST_POSTGRES_URL`` (``scripts/ensure-postgres.sh`` prints one); each test
gets a fresh database cloned from a migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade

POSTGRES_ENV = "VAULT_TEST_POSTGRES_URL"
SKIP_POSTGRES = (
    f"!!! PostgreSQL NOT TESTED: {POSTGRES_ENV} is unset. "
    "Run scripts/test.sh, or export it from scripts/ensure-postgres.sh !!!"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _admin_engine(url: str) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "vault.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[tuple[str, str] | None]:
    """(server URL, template database name), or None when PostgreSQL is not configured."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        yield None
        return
    admin = _admin_engine(url)
    name = f"vault_tpl_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(url).set(database=name).render_as_string(hide_password=False))
    upgrade(engine)
    engine.dispose()
    try:
        yield url, name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_template: tuple[str, str] | None,
) -> Iterator[str]:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        target = tmp_path / "vault.db"
        shutil.copyfile(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    if postgres_template is None:
        pytest.skip(SKIP_POSTGRES)
    url, template = postgres_template
    name = f"vault_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
