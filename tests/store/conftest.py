"""Store fixtures: migrated databases of both backends (see ``backends.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_backends() -> object:
    name = "vault_test_backends"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("backends.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_backends = _load_backends()
sqlite_template = _backends.sqlite_template  # type: ignore[attr-defined]
postgres_template = _backends.postgres_template  # type: ignore[attr-defined]
database_url = _backends.database_url  # type: ignore[attr-defined]
engine = _backends.engine  # type: ignore[attr-defined]
session_factory = _backends.session_factory  # type: ignore[attr-defined]
