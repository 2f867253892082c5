"""The log's own readers keep memory bounded whatever the log's length, on both databases.

Entries are bulk-inserted (chained in Python, one ``executemany`` per chunk), then
``verify_chain`` and a walk through one patient's pages run under ``tracemalloc``: their
peak must not grow with the number of entries. Reading the log whole would take about
0.9 KB per entry (14 MB at 16,000), far over the bound.
"""

from __future__ import annotations

import os
import resource
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from vault.audit.log import GENESIS_HASH, AuditEvent, AuditLog, entry_hash
from vault.store.audit_models import AuditEntryRow
from vault.store.database import make_session_factory

PATIENTS = 50
PAGE = 100
CHUNK = 10_000
EPOCH = datetime(2026, 1, 1)


def bulk_append(engine: Engine, *, after: int, tail: bytes, count: int) -> bytes:
    """Append ``count`` chained entries after sequence ``after`` (hash ``tail``); return
    the new tail hash."""
    prev = tail
    with engine.begin() as conn:
        for start in range(after + 1, after + count + 1, CHUNK):
            rows = []
            for seq in range(start, min(start + CHUNK, after + count + 1)):
                at = EPOCH + timedelta(milliseconds=seq)
                event = AuditEvent(
                    f"pat_{seq % PATIENTS}",
                    "0xprovider",
                    "read",
                    "allowed",
                    "Observation",
                    "TREAT",
                    f"rec-{seq}",
                )
                digest = entry_hash(seq, at, event, prev)
                rows.append(
                    {
                        "seq": seq,
                        "at": at.replace(tzinfo=UTC),
                        "patient_id": event.patient_id,
                        "actor": event.actor,
                        "action": event.action,
                        "outcome": event.outcome,
                        "scope": event.scope,
                        "purpose": event.purpose,
                        "record_id": event.record_id,
                        "reason": event.reason,
                        "prev_hash": prev,
                        "entry_hash": digest,
                    }
                )
                prev = digest
            conn.execute(insert(AuditEntryRow), rows)
    return prev


def peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def walk_pages(log: AuditLog, patient_id: str) -> int:
    """Every entry of one patient, a page at a time, as the access-log route reads them."""
    seen, first = 0, 1
    while page := log.entries(patient_id=patient_id, first=first, limit=PAGE):
        seen += len(page)
        first = page[-1].seq + 1
    return seen


def test_verify_and_paging_memory_does_not_grow_with_the_log(engine: Engine) -> None:
    log = AuditLog(session_factory=make_session_factory(engine))
    small, large = 2_000, 16_000
    tail = bulk_append(engine, after=0, tail=GENESIS_HASH, count=small)
    verify_small = peak_bytes(log.verify_chain)
    pages_small = peak_bytes(lambda: walk_pages(log, "pat_7"))
    bulk_append(engine, after=small, tail=tail, count=large - small)
    verify_large = peak_bytes(log.verify_chain)
    pages_large = peak_bytes(lambda: walk_pages(log, "pat_7"))

    assert log.verify_chain() == large
    assert walk_pages(log, "pat_7") == large // PATIENTS
    # Eight times the entries: the same peak, within noise (and far under 0.9 KB each).
    slack = 512 * 1024
    assert verify_large <= verify_small * 1.5 + slack, (verify_small, verify_large)
    assert pages_large <= pages_small * 1.5 + slack, (pages_small, pages_large)
    assert max(verify_large, pages_large) < 4 * 1024 * 1024
    # and appends go on from the bulk-inserted tail
    assert log.append(AuditEvent("pat_1", "0xprovider", "read", "allowed")).seq == large + 1
    assert log.verify_chain() == large + 1


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


@pytest.mark.skipif(
    not os.environ.get("VAULT_LONG_TESTS"),
    reason="the million-entry run takes minutes a database: VAULT_LONG_TESTS=1 runs it; the "
    "test above shows the same bound growing the log eightfold",
)
def test_a_million_entries_verify_and_page_in_bounded_memory(engine: Engine) -> None:
    """The real size, without tracemalloc (which slows the walk eightfold): the process's
    peak resident size may not grow by more than 64 MB while a million entries are
    verified and one patient's 20,000 are paged through (the log read whole: about 900 MB).
    """
    log = AuditLog(session_factory=make_session_factory(engine))
    count = 1_000_000
    bulk_append(engine, after=0, tail=GENESIS_HASH, count=count)
    before = max_rss_bytes()
    assert log.verify_chain() == count
    assert walk_pages(log, "pat_7") == count // PATIENTS
    grown = max_rss_bytes() - before
    assert grown < 64 * 1024 * 1024, grown
