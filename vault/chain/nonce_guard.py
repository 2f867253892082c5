"""Serialize relayer nonce allocation across processes that share one operator key.

Each process's :class:`~vault.chain.relayer.Relayer` caches its next nonce; two API
processes relaying with the same key would otherwise race for the same nonce ("nonce too
low") and lean on retries. With a guard, a process holds it from reading the node's
pending count to the node accepting the transaction, so every process sees the others'
transactions and none collides. The guard follows the database, which every process of a
deployment shares anyway: a lock file beside a SQLite database (one machine), a
session-level advisory lock on PostgreSQL (many machines).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import Engine, text

from vault.store.database import is_sqlite_file

NonceGuard = Callable[[], AbstractContextManager[None]]

#: Arbitrary, fixed: the advisory-lock key the vault's relayers agree on.
ADVISORY_KEY = 0x7661756C74  # "vault"


def file_guard(path: Path) -> NonceGuard:
    path.parent.mkdir(parents=True, exist_ok=True)
    local = threading.Lock()  # flock is per open file; threads of one process share one

    @contextmanager
    def guard() -> Iterator[None]:
        with local, path.open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    return guard


def advisory_guard(engine: Engine) -> NonceGuard:
    local = threading.Lock()

    @contextmanager
    def guard() -> Iterator[None]:
        with local, engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                conn.commit()

    return guard


def guard_for(engine: Engine) -> NonceGuard:
    """The guard matching the shared database behind ``engine``."""
    url = engine.url
    if is_sqlite_file(engine):
        return file_guard(Path(str(url.database)).with_suffix(".relayer.lock"))
    if url.get_backend_name() == "postgresql":
        return advisory_guard(engine)
    return lambda: nullcontext()
