"""Hot-path lookups on an embedded SQLite file, run without SQLAlchemy's execution layer.

Every provider read looks up an account and a record. As prebuilt Core statements those
cost about 35 and 50 µs here, almost all of it SQLAlchemy's per-execution machinery
(connection checkout, execution context, result wrapping); the same SQL on a kept
``sqlite3`` connection costs 5 µs. :class:`PreparedQuery` keeps the parts SQLAlchemy is
good at: the statement is still written in Core and compiled by the SQLite dialect, and
each column's own result processor turns stored values back into Python ones, so a row
reads as it would through the engine. Only execution is direct, on one read-only
connection per thread. Other databases (PostgreSQL) keep the engine path, where the
round trip, not the library, is the cost.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine, Select

from vault.store.database import SQLITE_BUSY_TIMEOUT_MS


def is_sqlite_file(engine: Engine) -> bool:
    """Whether ``engine`` is an SQLite database in a file another connection can open."""
    database = engine.url.database
    return engine.dialect.name == "sqlite" and bool(database) and database != ":memory:"


class SqliteReads:
    """Read-only ``sqlite3`` connections to one database file, one per thread."""

    def __init__(self, engine: Engine) -> None:
        if not is_sqlite_file(engine):
            raise ValueError("direct reads need an SQLite database file")
        self._engine = engine
        self._path = str(engine.url.database)
        self._local = threading.local()

    def prepare(self, statement: Select[Any]) -> PreparedQuery:
        return PreparedQuery(self, statement)

    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Autocommit: each SELECT is its own read transaction and sees every commit
            # made before it (WAL), and none stays open to hold back checkpoints.
            connection = sqlite3.connect(self._path, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA query_only=ON")  # these connections never write
            self._local.connection = connection
        return connection

    @property
    def engine(self) -> Engine:
        return self._engine


class PreparedQuery:
    """One Core SELECT, compiled once, returning at most one row as a named tuple."""

    def __init__(self, reads: SqliteReads, statement: Select[Any]) -> None:
        dialect = reads.engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._reads = reads
        self._sql = str(compiled)
        self._params = tuple(compiled.positiontup or ())
        columns = list(statement.selected_columns)
        self._row: Any = namedtuple("_Row", [column.key for column in columns])  # type: ignore[misc]
        processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self._processors = [(i, p) for i, p in enumerate(processors) if p is not None]

    def first(self, **params: Any) -> Any:
        """The first row (fields named as the statement's columns), or None."""
        cursor = self._reads.connection().execute(
            self._sql, tuple(params[name] for name in self._params)
        )
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()  # ends the statement, and with it the read transaction
        if raw is None:
            return None
        if not self._processors:
            return self._row._make(raw)
        values = list(raw)
        for index, process in self._processors:
            values[index] = process(values[index])
        return self._row._make(values)


class RowLookup(Protocol):
    def first(self, **params: Any) -> Any:
        """The first row (fields named as the statement's columns), or None."""
        ...


class EngineQuery:
    """:class:`PreparedQuery`'s interface through the engine (PostgreSQL and the rest)."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        self._engine = engine
        self._statement = statement

    def first(self, **params: Any) -> Any:
        with self._engine.connect() as conn:
            return conn.execute(self._statement, params).first()


def hot_lookups(engine: Engine, *statements: Select[Any]) -> list[RowLookup]:
    """Each statement as a lookup: direct on an SQLite file (sharing one read-only
    connection per thread), through the engine on any other database."""
    if not is_sqlite_file(engine):
        return [EngineQuery(engine, statement) for statement in statements]
    reads = SqliteReads(engine)
    return [reads.prepare(statement) for statement in statements]
