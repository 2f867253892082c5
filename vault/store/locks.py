"""Locks that every process of one vault shares, through the database they all open.

Used for what must happen once per deployment, not once per API process: applying
migrations (:func:`exclusive`) and the periodic housekeeping (:class:`Leadership`).

* PostgreSQL: a session-level advisory lock (``pg_advisory_lock``), taken on a connection
  of its own that is never returned to a pool (a pooled connection would carry the lock
  to whoever borrows it next). The server releases it when that connection ends, so a
  process that dies, even by SIGKILL, frees it as soon as its socket closes.
* SQLite: ``flock`` on a file beside the database. The kernel releases it when the
  process dies. ``flock`` locks belong to an open file, so two threads (or two
  :class:`Leadership` objects) of one process exclude each other as two processes do.
* An in-memory SQLite database lives in one process: a process-local lock suffices.

Any other database is refused: only these two are supported (``ConfigurationError``).
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from vault.errors import ConfigurationError


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (PostgreSQL's bigint form)."""
    digest = hashlib.sha256(f"vault:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file(engine: Engine, name: str) -> Path:
    """The lock file for ``name`` beside an SQLite database file."""
    return Path(str(engine.url.database)).with_suffix(f".{name}.lock")


def _kind(engine: Engine) -> str:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return "postgresql"
    if dialect == "sqlite":
        database = engine.url.database
        return "sqlite-file" if database and database != ":memory:" else "in-process"
    raise ConfigurationError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def _dedicated_engine(engine: Engine) -> Engine:
    # No pool: closing a connection ends its session. Autocommit: the session never sits
    # "idle in transaction" while it holds the lock.
    return create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


_process_locks: dict[tuple[str, str], threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(engine: Engine, name: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault((str(engine.url), name), threading.Lock())


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Hold the deployment-wide lock ``name`` for the block; wait while another holds it."""
    kind = _kind(engine)
    if kind == "postgresql":
        own = _dedicated_engine(engine)
        try:
            with own.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": advisory_key(name)})
                yield
            # leaving the block closed the connection: its session, and the lock, ended
        finally:
            own.dispose()
    elif kind == "sqlite-file":
        path = lock_file(engine, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield  # closing the file releases the lock
    else:
        with _process_lock(engine, name):
            yield


class Leadership:
    """Non-blocking claim on the lock ``name``, kept until released or the process ends.

    :meth:`try_lead` answers whether this process leads now: it takes the lock when free
    and, while held, checks that it still is (a PostgreSQL connection can break, and the
    server then frees the lock for another process). Not thread-safe: one thread asks.
    """

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._name = name
        self._kind = _kind(engine)
        self._own = _dedicated_engine(engine) if self._kind == "postgresql" else None
        self._conn: Connection | None = None
        self._file: IO[str] | None = None
        self._local = _process_lock(engine, name) if self._kind == "in-process" else None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def try_lead(self) -> bool:
        if self._held:
            if self._kind == "postgresql" and not self._still_connected():
                self.release()
            else:
                return True
        self._held = self._acquire()
        return self._held

    def release(self) -> None:
        """Give the lock up (idempotent); another process may take it at once."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except Exception:  # a broken connection is closed already; the lock is gone
                conn.invalidate()
        if self._file is not None:
            handle, self._file = self._file, None
            handle.close()
        if self._local is not None and self._held:
            self._local.release()
        self._held = False

    def _still_connected(self) -> bool:
        assert self._conn is not None
        try:
            self._conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _acquire(self) -> bool:
        if self._kind == "postgresql":
            assert self._own is not None
            conn = self._own.connect()
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(self._name)}
            ).scalar_one()
            if got:
                self._conn = conn
            else:
                conn.close()
            return bool(got)
        if self._kind == "sqlite-file":
            path = lock_file(self._engine, self._name)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        assert self._local is not None
        return self._local.acquire(blocking=False)
