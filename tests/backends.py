"""Database backends for the tests: SQLite always, PostgreSQL when configured.

Registered for the whole suite by ``tests/conftest.py``. A test (or a fixture) that takes
``database_url`` runs once per backend. PostgreSQL comes from ``VAULT_TEST_POSTGRES_URL``
(``scripts/ensure-postgres.sh`` prints one); each test gets a fresh database cloned from a
migrated template (about 40 ms), so tests never see each other's rows. Without the variable
the PostgreSQL variants are skipped, loudly; under CI (``CI=true``) or with
``VAULT_REQUIRE_POSTGRES=1`` they fail instead, so a CI run cannot pass on SQLite alone.

A test of SQLite-only behaviour says so: ``@pytest.mark.sqlite_only("why")`` skips its
PostgreSQL variant with that reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade

POSTGRES_ENV = "VAULT_TEST_POSTGRES_URL"
REQUIRE_ENV = "VAULT_REQUIRE_POSTGRES"
SKIP_POSTGRES = (
    f"!!! PostgreSQL NOT TESTED: {POSTGRES_ENV} is unset. "
    "Run scripts/test.sh, or export it from scripts/ensure-postgres.sh !!!"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SQLITE_ONLY_MARKER = (
    "sqlite_only(reason): the test is about SQLite-only behaviour; its PostgreSQL variant "
    "is skipped with the reason"
)

#: A migrated PostgreSQL template: (server URL, template database name).
PostgresTemplate = tuple[str, str]


def postgres_required() -> bool:
    """CI (or an operator) insists: a missing PostgreSQL is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(REQUIRE_ENV) == "1"


def _admin_engine(url: str) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _url_of(server_url: str, database: str) -> str:
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


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
def postgres_template() -> Iterator[PostgresTemplate | None]:
    """The migrated template, or None when PostgreSQL is not configured (and not required)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if postgres_required():
            pytest.fail(f"{POSTGRES_ENV} is unset but PostgreSQL is required (CI or {REQUIRE_ENV})")
        yield None
        return
    admin = _admin_engine(url)
    name = f"vault_tpl_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(_url_of(url, name))
    upgrade(engine)
    engine.dispose()
    try:
        yield url, name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_postgres(
    server_url: str, *, template: str | None = None, prefix: str = "vault_t"
) -> Iterator[str]:
    """A fresh database on the server (a clone of ``template``, or empty), dropped
    (connections and all) after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    clone = f' TEMPLATE "{template}"' if template else ""
    admin = _admin_engine(server_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{clone}'))
    try:
        yield _url_of(server_url, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def cloned_postgres(template: PostgresTemplate) -> Iterator[str]:
    """A fresh database cloned from ``template``, dropped after."""
    url, template_name = template
    with scratch_postgres(url, template=template_name) as cloned:
        yield cloned


def cloned_sqlite(template: Path, target: Path) -> str:
    """A copy of the migrated SQLite ``template`` at ``target``; its URL."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each backend.

    The SQLite file is ``tmp_path/data/vault.db``: where a vault with ``data_dir =
    tmp_path/data`` keeps it by default, so the ``settings`` fixtures' SQLite variant is
    the embedded default layout.
    """
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        yield cloned_sqlite(template, tmp_path / "data" / "vault.db")
        return
    marker = request.node.get_closest_marker("sqlite_only")
    if marker is not None:
        pytest.skip(f"SQLite only: {marker.args[0]}")
    # Asked for here, not as a parameter: a missing, required PostgreSQL fails only the
    # PostgreSQL variants.
    postgres_template: PostgresTemplate | None = request.getfixturevalue("postgres_template")
    if postgres_template is None:
        pytest.skip(SKIP_POSTGRES)
    with cloned_postgres(postgres_template) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) of each backend, for what runs before any migration
    (migrations, elections, a first deployment); dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'vault.db'}"
        return
    postgres_template: PostgresTemplate | None = request.getfixturevalue("postgres_template")
    if postgres_template is None:
        pytest.skip(SKIP_POSTGRES)
    with scratch_postgres(postgres_template[0], prefix="vault_fresh") as url:
        yield url


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
