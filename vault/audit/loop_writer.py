"""The event loop's own writer of audit batches, for an embedded SQLite file.

A provider read waits for its audit entry to be committed. Through SQLAlchemy that
commit cost about 0.15 ms here (engine checkout, statement cache, type processing, begin
and commit bookkeeping); the same insert and commit on a kept ``sqlite3`` connection cost
0.04 ms. This writer keeps that connection, with the statement SQLAlchemy compiles for
the table and the column's own bind processor, so rows are stored exactly as the ORM
stores and reads them. It never waits: its busy timeout is 0, and a caller that gets
:class:`sqlite3.Error` (another connection holds the write lock) hands the batch to the
ordinary, waiting path. It chains onto the log's real tail when another process has
appended, inside the same transaction, so processes sharing the file do not push each
other onto that path.

It never checkpoints the write-ahead log on the loop either. SQLite's automatic
checkpoint runs inside the commit that crosses 1,000 WAL pages and fsyncs the WAL and the
database: about 5 ms here, every 250-300 commits, with every read in flight waiting on the
loop (at concurrency 32, seven such stalls in five seconds, which put 1-2% of reads over
the p99). This connection's automatic checkpoint is off; every
:data:`CHECKPOINT_EVERY_COMMITS` commits a thread runs a passive checkpoint on a
connection of its own, which blocks neither readers nor this writer and releases the GIL
while SQLite works. Under steady appends a passive checkpoint never finds the log fully
copied with no writer in it, so the log would only grow; once it holds
:data:`WAL_RESTART_FRAMES` frames the thread runs ``TRUNCATE`` checkpoints, a millisecond
apart and never waiting on a lock, until one finds no reader in the log and starts it
over. Batches that meet it holding the write lock (a few milliseconds) take the waiting
path, in a worker thread, so the loop still never waits.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, insert, select

from vault.store.audit_models import AuditEntryRow
from vault.store.prepared import is_sqlite_file

#: (sequence number, entry hash) of the last entry of the log.
Tail = tuple[int, bytes]
#: The previous hash of the first entry (the tail of an empty log).
GENESIS_HASH = b"\x00" * 32
#: The log's last entry, as (sequence, hash); no row for an empty log (see :func:`tail_of`).
LAST_ENTRY = (
    select(AuditEntryRow.seq, AuditEntryRow.entry_hash).order_by(AuditEntryRow.seq.desc()).limit(1)
)


#: Commits of the loop writer between two background checkpoints (each commit of one
#: entry writes about three pages, so the WAL stays under SQLite's 1,000-page default).
CHECKPOINT_EVERY_COMMITS = 200
#: Frames in the write-ahead log beyond which the background checkpoint starts it over.
WAL_RESTART_FRAMES = 4000
#: Attempts at restarting the log, and the pause between two (see ``_restart_log``).
RESTART_ATTEMPTS = 200
RESTART_PAUSE_SECONDS = 0.001


def tail_of(last: Sequence[Any] | None) -> Tail:
    """The tail :data:`LAST_ENTRY` returned (its row, or None for an empty log)."""
    return (last[0], last[1]) if last is not None else (0, GENESIS_HASH)


class LoopAuditWriter:
    """Inserts audit rows in one transaction on a private connection; never waits."""

    def __init__(self, engine: Engine) -> None:
        if not is_sqlite_file(engine):
            raise ValueError("the loop writer needs an SQLite database file")
        compiled = insert(AuditEntryRow).compile(dialect=engine.dialect)
        self._sql = str(compiled)
        processors: dict[str, Callable[[Any], Any] | None] = {
            column.name: column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            for column in AuditEntryRow.__table__.columns
        }
        # (column, its bind processor or None), in the statement's parameter order.
        self._columns = tuple((name, processors[name]) for name in compiled.positiontup or ())
        self._last_entry_sql = str(
            LAST_ENTRY.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        )
        self._path = str(engine.url.database)
        self._connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA synchronous=NORMAL")  # as the engine's connections
        self._connection.execute("PRAGMA busy_timeout=0")
        self._connection.execute("PRAGMA wal_autocheckpoint=0")  # see the module doc
        self._commits = 0
        self._checkpointer: threading.Thread | None = None
        self.checkpoints = 0  # background checkpoints finished (for tests and curiosity)

    def append(self, tail: Tail | None, chain: Callable[[Tail], list[dict[str, Any]]]) -> None:
        """Insert the rows ``chain`` builds on a tail and commit; or raise
        :class:`sqlite3.Error` having written nothing.

        ``tail`` is the (sequence, hash) this process last wrote, or None. The write lock is
        taken first (``BEGIN IMMEDIATE``, which fails at once if another connection holds
        it), so the log cannot move under the transaction: if another process appended
        since ``tail`` (the first sequence number collides on the primary key) or the tail
        is unknown, it is read inside the same transaction and the rows are chained onto
        it. Several processes sharing one file thus stay on the loop instead of falling back
        to the waiting path each time the other one has written.
        """
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            if tail is not None:
                try:
                    connection.executemany(self._sql, self._values(chain(tail)))
                except sqlite3.IntegrityError:
                    # Another process appended since: start again from the log's own tail.
                    connection.execute("ROLLBACK")
                    connection.execute("BEGIN IMMEDIATE")
                    tail = None
            if tail is None:
                tail = tail_of(connection.execute(self._last_entry_sql).fetchone())
                connection.executemany(self._sql, self._values(chain(tail)))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY_COMMITS:
            self._checkpoint_in_background()

    def close(self) -> None:
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.join()
        self._connection.close()

    def _checkpoint_in_background(self) -> None:
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return  # the last one is still copying: this many more commits, then again
        self._commits = 0
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="audit-wal-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None)
            try:
                # PASSIVE: copies what it can without waiting for readers or writers.
                _busy, frames, _copied = connection.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()
                if frames >= WAL_RESTART_FRAMES:
                    self._restart_log(connection)
            finally:
                connection.close()
        except sqlite3.Error:
            return  # busy or gone: the next round tries again, and SQLite's own
            # checkpoints on the engine's connections still run on their commits
        self.checkpoints += 1

    @staticmethod
    def _restart_log(connection: sqlite3.Connection) -> None:
        """Copy the whole log into the database and start it over, without ever waiting
        with the write lock held.

        A ``TRUNCATE`` checkpoint that meets a reader still using the log waits for it,
        and blocks new writers while it waits; with a busy timeout it waited in SQLite's
        sleeps of 1, 2, 5, 10, 15... ms, and the loop's audit commits (so every read in
        flight) stalled for 70-100 ms. With no timeout, an attempt that meets a reader
        copies what it can and returns busy at once, so it is retried here instead, a
        millisecond apart, for up to :data:`RESTART_ATTEMPTS` attempts (readers are
        single statements, so one soon finds none).
        """
        connection.execute("PRAGMA busy_timeout=0")
        for _ in range(RESTART_ATTEMPTS):
            busy, _frames, _copied = connection.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
            if not busy:
                return
            time.sleep(RESTART_PAUSE_SECONDS)

    def _values(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            tuple(
                row[name] if process is None else process(row[name])
                for name, process in self._columns
            )
            for row in rows
        ]
