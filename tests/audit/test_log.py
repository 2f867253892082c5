"""The audit log on a real SQLite database: chaining, concurrency, anchoring, proofs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from vault.audit import log as audit_log
from vault.audit import loop_writer, merkle
from vault.audit.log import Anchor, AuditChainBroken, AuditEvent, AuditLog, entry_body
from vault.audit.proofs import proofs_for, verify_proof
from vault.errors import DatabaseUnavailable
from vault.store.audit_models import AuditEntryRow
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(engine)
    return make_session_factory(engine)


def read(patient: str, n: int = 0) -> AuditEvent:
    return AuditEvent(patient, "0xprovider", "read", "allowed", "Observation", "TREAT", f"r{n}")


class RecordingSink:
    def __init__(self) -> None:
        self.roots: dict[tuple[int, int], bytes] = {}

    def next_audit_sequence(self) -> int:
        return max((last for _, last in self.roots), default=0) + 1

    def anchor(self, *, root: bytes, first_seq: int, last_seq: int) -> tuple[str, int]:
        self.roots[(first_seq, last_seq)] = root
        return "0x" + "ab" * 32, len(self.roots)


def test_entries_chain_and_verify(factory: sessionmaker[Session]) -> None:
    log = AuditLog(session_factory=factory)
    first = log.append(read("p1"))
    second = log.append(read("p2"))
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.entry_hash
    assert log.verify_chain() == 2
    assert [e.seq for e in log.entries(patient_id="p2")] == [2]


def test_rewriting_an_entry_is_detected(factory: sessionmaker[Session]) -> None:
    log = AuditLog(session_factory=factory)
    for i in range(3):
        log.append(read("p1", i))
    with factory() as session, session.begin():
        session.execute(
            update(AuditEntryRow).where(AuditEntryRow.seq == 2).values(outcome="denied")
        )
    with pytest.raises(AuditChainBroken):
        log.verify_chain()


def test_concurrent_appends_neither_collide_nor_get_lost(factory: sessionmaker[Session]) -> None:
    log = AuditLog(session_factory=factory)

    def writer(name: str) -> None:
        for i in range(25):
            log.append(read(name, i))

    threads = [threading.Thread(target=writer, args=(f"p{t}",)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.verify_chain() == 150
    assert len({(e.event.patient_id, e.event.record_id) for e in log.entries()}) == 150


def test_anchored_entries_prove_inclusion_against_the_anchored_root(
    factory: sessionmaker[Session],
) -> None:
    clock_times = iter(datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(60))
    log = AuditLog(session_factory=factory, clock=lambda: next(clock_times))
    sink = RecordingSink()
    for i in range(5):
        log.append(read("p1" if i % 2 else "p2", i))
    first = log.anchor(sink)
    assert first is not None and (first.first_seq, first.last_seq) == (1, 5)
    assert log.anchor(sink) is None
    for i in range(3):
        log.append(read("p1", 10 + i))
    second = log.anchor(sink)
    assert second is not None and (second.first_seq, second.last_seq) == (6, 8)
    log.append(read("p1", 99))  # not anchored yet

    entries = log.entries(patient_id="p1")

    def anchor_of(seq: int) -> Anchor | None:
        return next((a for a in log.anchors() if a.first_seq <= seq <= a.last_seq), None)

    proofs = proofs_for(log, entries, anchor_of=anchor_of)
    assert proofs[-1] is None
    for proof in proofs[:-1]:
        assert proof is not None
        chain_root = sink.roots[(proof.anchor.first_seq, proof.anchor.last_seq)]
        assert verify_proof(proof, chain_root=chain_root)
        other_root = sink.roots[(1, 5) if proof.anchor.first_seq == 6 else (6, 8)]
        assert not verify_proof(proof, chain_root=other_root)


def test_two_logs_on_one_database_interleave_without_forking_the_chain(
    factory: sessionmaker[Session],
) -> None:
    """Two API processes: each remembers its own tail, so most of their appends start from
    a stale one; the sequence number's key turns that into a retry, never a fork."""
    first, second = AuditLog(session_factory=factory), AuditLog(session_factory=factory)

    def worker(log: AuditLog, patient: str) -> None:
        for n in range(40):
            log.append(read(patient, n))

    threads = [
        threading.Thread(target=worker, args=(log, f"pat_{i}"))
        for i, log in enumerate([first, second, first, second])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.verify_chain() == 160
    assert [e.seq for e in second.entries()] == list(range(1, 161))


@pytest.mark.parametrize("commit_on_loop", [False, True], ids=["in-thread", "on-loop"])
def test_async_appends_are_group_committed_and_chained(
    factory: sessionmaker[Session], commit_on_loop: bool
) -> None:
    log = AuditLog(session_factory=factory, commit_on_loop=commit_on_loop)
    writes = 0
    original = log._chained  # both the on-loop and the in-thread writes chain each batch

    def counting(batch: list[Any], tail: Any) -> Any:
        nonlocal writes
        writes += 1
        return original(batch, tail)

    log._chained = counting  # type: ignore[method-assign]
    handed_to_threads = 0
    original_locked = log._write_locked

    def counting_locked(batch: list[Any]) -> None:
        nonlocal handed_to_threads
        handed_to_threads += 1
        original_locked(batch)

    log._write_locked = counting_locked  # type: ignore[method-assign]

    async def main() -> list[int]:
        entries = await asyncio.gather(*(log.append_async(read("pat_a", n)) for n in range(50)))
        return [e.seq for e in entries]

    seqs = asyncio.run(main())
    assert seqs == list(range(1, 51))  # each caller got its own entry, in arrival order
    assert writes < 50  # and they shared transactions
    # On the loop, no batch goes to a thread, not even the first (it reads the tail itself).
    assert handed_to_threads == (0 if commit_on_loop else writes)
    assert log.verify_chain() == 50
    # Sync appends from threads and async appends mix on one chain.
    log.append(read("pat_b"))
    assert asyncio.run(log.append_async(read("pat_c"))).seq == 52
    assert log.verify_chain() == 52


def test_a_closed_log_lets_its_connection_go_and_opens_another_on_the_next_append(
    factory: sessionmaker[Session],
) -> None:
    log = AuditLog(session_factory=factory, commit_on_loop=True)
    log.close()  # nothing opened yet: nothing to do
    assert asyncio.run(log.append_async(read("pat_a"))).seq == 1
    writer = log._loop_writer
    assert writer is not None
    log.close()
    assert log._loop_writer is None
    with pytest.raises(sqlite3.ProgrammingError):  # that connection is closed
        writer._connection.execute("SELECT 1")
    assert asyncio.run(log.append_async(read("pat_a", 1))).seq == 2
    assert log.verify_chain() == 2
    log.close()


@pytest.mark.parametrize("commit_on_loop", [False, True], ids=["in-thread", "on-loop"])
def test_async_append_that_cannot_be_written_fails_its_callers(
    tmp_path: Path, commit_on_loop: bool
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(engine)
    log = AuditLog(session_factory=make_session_factory(engine), commit_on_loop=commit_on_loop)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_entries")

    async def main() -> None:
        results = await asyncio.gather(
            *(log.append_async(read("pat_a", n)) for n in range(3)), return_exceptions=True
        )
        assert len(results) == 3
        assert all(isinstance(r, DatabaseUnavailable) for r in results)

    asyncio.run(main())


def test_on_loop_commit_never_parks_the_loop_on_a_held_write_lock(tmp_path: Path) -> None:
    """Another writer holds SQLite's write lock: the append waits for it in a worker
    thread while the loop keeps serving; once the lock is free the entry is committed."""
    path = tmp_path / "audit.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    log = AuditLog(session_factory=make_session_factory(engine), commit_on_loop=True)
    log.append(read("pat_a", 0))  # the tail is known: the next try goes straight to insert
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction

    async def main() -> int:
        append = asyncio.ensure_future(log.append_async(read("pat_a", 1)))
        ticks = 0
        for _ in range(10):  # the loop runs on while the append waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not append.done()
        holder.execute("COMMIT")
        entry = await append
        assert ticks == 10
        return entry.seq

    try:
        assert asyncio.run(main()) == 2
    finally:
        holder.close()
    assert log.verify_chain() == 2


def test_after_a_held_write_lock_the_next_batches_go_back_to_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch meets the write lock held and waits in a worker thread; what queues
    meanwhile, and everything after, is written on the loop again rather than through
    the slower thread path for as long as appends keep coming."""
    path = tmp_path / "audit.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    log = AuditLog(session_factory=make_session_factory(engine), commit_on_loop=True)
    log.append(read("pat_a", 0))
    in_threads: list[int] = []
    original = AuditLog._write_locked

    def counted(self: AuditLog, batch: list[Any]) -> None:
        in_threads.append(len(batch))
        original(self, batch)

    monkeypatch.setattr(AuditLog, "_write_locked", counted)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> list[int]:
        first = asyncio.ensure_future(log.append_async(read("pat_a", 1)))
        await asyncio.sleep(0.05)  # its batch is waiting for the lock in a thread
        queued = [asyncio.ensure_future(log.append_async(read("pat_a", n))) for n in (2, 3)]
        await asyncio.sleep(0.01)
        holder.execute("COMMIT")
        seqs = [(await first).seq] + [(await q).seq for q in queued]
        for n in range(4, 10):
            seqs.append((await log.append_async(read("pat_a", n))).seq)
        return seqs

    try:
        assert asyncio.run(main()) == list(range(2, 11))
    finally:
        holder.close()
    assert in_threads == [1]  # only the batch that met the lock
    assert log.verify_chain() == 10


def test_on_loop_commit_after_another_process_appended_retries_from_the_new_tail(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    here = AuditLog(session_factory=factory, commit_on_loop=True)
    elsewhere = AuditLog(session_factory=factory)
    handed_off: list[int] = []

    async def waiting_path(self: AuditLog, state: Any, batch: list[Any]) -> None:
        handed_off.append(len(batch))
        await original(self, state, batch)

    original = AuditLog._flush_in_threads
    monkeypatch.setattr(AuditLog, "_flush_in_threads", waiting_path)

    async def main() -> list[int]:
        seqs = []
        for n in range(10):
            seqs.append((await here.append_async(read("pat_a", n))).seq)
            elsewhere.append(read("pat_b", n))  # here's remembered tail is now stale
        return seqs

    assert asyncio.run(main()) == list(range(1, 21, 2))
    assert here.verify_chain() == 20
    # Every batch was chained onto the other process's entries on the loop itself, the
    # first one (no tail known yet) included: none needed the waiting path.
    assert handed_off == []


def test_anchoring_in_batches_gives_the_root_of_the_whole_range(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule hashes a batch at a time (handing the GIL back in between): the root
    is still that of every entry of the range, whatever the batch boundaries."""
    monkeypatch.setattr(audit_log, "ANCHOR_BATCH_ENTRIES", 7)
    log = AuditLog(session_factory=factory)
    sink = RecordingSink()
    for i in range(40):
        log.append(read("p1", i))
    assert log.anchor(sink) is not None
    for i in range(23):
        log.append(read("p2", i))
    assert log.anchor(sink) is not None
    entries = log.entries()
    assert len(entries) == 63
    for (first, last), chain_root in sink.roots.items():
        leaves = [entry.leaf for entry in entries if first <= entry.seq <= last]
        assert chain_root == merkle.root(leaves)
    assert set(sink.roots) == {(1, 40), (41, 63)}


def test_anchoring_refuses_a_range_with_an_entry_missing(factory: sessionmaker[Session]) -> None:
    log = AuditLog(session_factory=factory)
    for i in range(5):
        log.append(read("p1", i))
    with factory() as session, session.begin():
        session.query(AuditEntryRow).filter(AuditEntryRow.seq == 3).delete()
    sink = RecordingSink()
    with pytest.raises(AuditChainBroken):
        log.anchor(sink)
    assert sink.roots == {}


def test_starting_the_log_over_never_waits_on_a_reader_with_the_write_lock_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader inside the log makes the restart give up at once (and retry), instead of
    waiting with new writers blocked behind it; once the reader is gone, it succeeds."""
    monkeypatch.setattr(loop_writer, "RESTART_ATTEMPTS", 5)
    path = tmp_path / "audit.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    log = AuditLog(session_factory=make_session_factory(engine))
    for i in range(20):
        log.append(read("p1", i))
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM audit_entries").fetchone()  # holds a snapshot
    log.append(read("p1", 20))  # so the log has frames the reader does not see
    checkpointer = sqlite3.connect(path, isolation_level=None)
    started = time.monotonic()
    loop_writer.LoopAuditWriter._restart_log(checkpointer)
    assert time.monotonic() - started < 1.0  # the engine's busy timeout is far longer
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA busy_timeout=0")
    writer.execute("BEGIN IMMEDIATE")  # the write lock is free
    writer.execute("ROLLBACK")
    assert path.with_name("audit.db-wal").stat().st_size > 0
    reader.execute("COMMIT")
    loop_writer.LoopAuditWriter._restart_log(checkpointer)
    assert path.with_name("audit.db-wal").stat().st_size == 0
    for connection in (reader, checkpointer, writer):
        connection.close()
    assert log.verify_chain() == 21


def test_on_loop_commits_leave_checkpoints_to_a_thread_and_keep_the_wal_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop writer's commits never checkpoint (SQLite's automatic checkpoint would
    fsync on the loop); a thread does, and starts the log over once it is long."""
    monkeypatch.setattr(loop_writer, "CHECKPOINT_EVERY_COMMITS", 20)
    monkeypatch.setattr(loop_writer, "WAL_RESTART_FRAMES", 100)
    path = tmp_path / "audit.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    log = AuditLog(session_factory=make_session_factory(engine), commit_on_loop=True)

    async def main() -> None:
        for n in range(600):  # one entry per commit: about three pages each
            await log.append_async(read("pat_a", n))

    asyncio.run(main())
    writer = log._loop_writer
    assert writer is not None
    automatic = writer._connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    writer.close()  # waits for a checkpoint under way
    assert automatic == 0
    assert writer.checkpoints >= 5
    # Without the restarts the log would hold some 1,800 frames (7 MB) by now.
    assert path.with_name("audit.db-wal").stat().st_size < 200 * 4096
    assert log.verify_chain() == 600


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=2**63 - 1),
    at=st.datetimes(),
    values=st.lists(st.text(), min_size=8, max_size=8),
)
def test_entry_body_is_json_dumps_with_sorted_keys(
    seq: int, at: datetime, values: list[str]
) -> None:
    """The hand-written canonical JSON of an entry equals ``json.dumps`` of its fields
    (sorted keys, compact, ASCII escapes) for any text, quotes, controls and non-ASCII."""
    event = AuditEvent(*values)
    expected = json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "patient_id": event.patient_id,
            "actor": event.actor,
            "action": event.action,
            "outcome": event.outcome,
            "scope": event.scope,
            "purpose": event.purpose,
            "record_id": event.record_id,
            "reason": event.reason,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    assert entry_body(seq, at, event) == expected
