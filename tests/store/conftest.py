"""Store fixtures: migrated databases of both backends (see ``backends.py``)."""

from __future__ import annotations

from tests.store.backends import (
    database_url,
    engine,
    postgres_template,
    session_factory,
    sqlite_template,
)

# Fixtures from tests/store/backends.py: migrated databases of both backends.
__all__ = ["database_url", "engine", "postgres_template", "session_factory", "sqlite_template"]
