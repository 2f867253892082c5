"""The audit log on real databases (SQLite and PostgreSQL): chaining, concurrency,
anchoring, proofs."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session, sessionmaker

from vault.audit import log as audit_log
from vault.audit import merkle
from vault.audit.log import Anchor, AuditChainBroken, AuditEvent, AuditLog, entry_body
from vault.audit.proofs import proofs_for, verify_proof
from vault.errors import DatabaseUnavailable
from vault.store.audit_models import AuditEntryRow
from vault.store.database import make_engine, make_session_factory


@pytest.fixture
def factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """A migrated, empty database of each backend (``tests/backends.py``)."""
    return session_factory


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
    original = log._chained

    def counting(batch: list[Any], tail: Any) -> Any:
        nonlocal writes
        writes += 1
        return original(batch, tail)

    log._chained = counting  # type: ignore[method-assign]

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


def test_async_append_that_cannot_be_written_fails_its_callers(engine: Engine) -> None:
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


def test_entries_read_the_same_instant_whatever_the_session_time_zone(
    database_url: str,
) -> None:
    """Times are written as aware UTC and read back as naive UTC on both databases: a
    PostgreSQL session in another time zone neither shifts an entry nor breaks its hash."""
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _far_away(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'Pacific/Kiritimati'")  # UTC+14

    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    log = AuditLog(session_factory=make_session_factory(engine), clock=lambda: at)
    written = log.append(read("p1"))
    try:
        assert written.at == datetime(2026, 3, 1, 17, 0, 0, 123456)  # naive UTC
        assert [e.at for e in log.entries()] == [written.at]
        assert log.verify_chain() == 1
    finally:
        engine.dispose()


def test_entries_page_by_sequence_cursor(factory: sessionmaker[Session]) -> None:
    log = AuditLog(session_factory=factory)
    for i in range(25):
        log.append(read("p1" if i % 3 else "p2", i))
    pages: list[list[int]] = []
    first = 1
    while page := log.entries(patient_id="p1", first=first, limit=4):
        pages.append([e.seq for e in page])
        first = page[-1].seq + 1
    assert [len(p) for p in pages] == [4, 4, 4, 4]
    assert [seq for page in pages for seq in page] == [e.seq for e in log.entries(patient_id="p1")]
    assert [e.seq for e in log.iter_entries(patient_id="p2", batch=2)] == list(range(1, 26, 3))
    assert [e.seq for e in log.iter_entries(first=20, last=22, batch=1)] == [20, 21, 22]
    assert log.leaves(first=3, last=5) == [e.leaf for e in log.entries(first=3, last=5)]


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
