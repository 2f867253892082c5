"""The audit log on a real SQLite database: chaining, concurrency, anchoring, proofs."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from vault.audit.log import Anchor, AuditChainBroken, AuditEvent, AuditLog
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


def test_async_appends_are_group_committed_and_chained(factory: sessionmaker[Session]) -> None:
    log = AuditLog(session_factory=factory)
    writes = 0
    original = log._write_locked

    def counting(batch: list[Any]) -> None:
        nonlocal writes
        writes += 1
        original(batch)

    log._write_locked = counting  # type: ignore[method-assign]

    async def main() -> list[int]:
        entries = await asyncio.gather(*(log.append_async(read("pat_a", n)) for n in range(50)))
        return [e.seq for e in entries]

    seqs = asyncio.run(main())
    assert seqs == list(range(1, 51))  # each caller got its own entry, in arrival order
    assert writes < 50  # and they shared transactions
    assert log.verify_chain() == 50
    # Sync appends from threads and async appends mix on one chain.
    log.append(read("pat_b"))
    assert asyncio.run(log.append_async(read("pat_c"))).seq == 52
    assert log.verify_chain() == 52


def test_async_append_that_cannot_be_written_fails_its_callers(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(engine)
    log = AuditLog(session_factory=make_session_factory(engine))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_entries")

    async def main() -> None:
        results = await asyncio.gather(
            *(log.append_async(read("pat_a", n)) for n in range(3)), return_exceptions=True
        )
        assert len(results) == 3
        assert all(isinstance(r, DatabaseUnavailable) for r in results)

    asyncio.run(main())
