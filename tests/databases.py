"""Fresh, empty databases of each backend: ``empty_database_url`` now lives in
``tests/backends.py`` with the migrated ones (registered for every directory by
``tests/conftest.py``); re-exported here for the modules that import it by this name."""

from __future__ import annotations

from tests.backends import empty_database_url

__all__ = ["empty_database_url"]
