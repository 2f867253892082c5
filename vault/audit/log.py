"""The hash-chained access log.

Each entry's hash covers its fields and the previous entry's hash, so rewriting or
dropping an entry breaks every later hash. Contiguous ranges of entries are anchored on
chain as Merkle roots; a patient receives their entries with inclusion proofs and checks
them against the roots the contract stores (``vault.audit.proofs``).

Appends are safe across processes: the sequence number is the primary key, so two
writers racing for the same number cannot both win; the loser re-reads the tail and
retries. Within a process, concurrent appends are group-committed (see :class:`AuditLog`).
The log's readers page (:meth:`AuditLog.entries` with ``limit``) or stream
(:meth:`AuditLog.iter_entries`, :meth:`AuditLog.verify_chain`), so memory is bounded
whatever the log's length.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Protocol

from sqlalchemy import Row, Select, bindparam, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from vault.audit import merkle
from vault.errors import DatabaseUnavailable, VaultError
from vault.store.audit_models import AuditAnchorRow, AuditEntryRow
from vault.store.database import engine_of
from vault.store.models import utcnow

APPEND_ATTEMPTS = 50
#: Each attempt may itself wait the database's busy timeout: bound the total, so a write
#: lock held by someone else turns into a prompt ``DatabaseUnavailable`` (503).
APPEND_DEADLINE_SECONDS = 10.0
#: Entries read and hashed between two hand-backs of the GIL while anchoring (about
#: 0.5 ms of work; see :meth:`AuditLog.anchor`).
ANCHOR_BATCH_ENTRIES = 256
#: Entries read per query by the log's own readers (:meth:`AuditLog.iter_entries`,
#: :meth:`AuditLog.verify_chain`): memory stays at one batch whatever the log's size.
READ_BATCH_ENTRIES = 1000

#: (sequence number, entry hash) of the last entry of the log.
Tail = tuple[int, bytes]
#: The previous hash of the first entry (the tail of an empty log).
GENESIS_HASH = b"\x00" * 32
#: The log's last entry, as (sequence, hash); no row for an empty log.
LAST_ENTRY = (
    select(AuditEntryRow.seq, AuditEntryRow.entry_hash).order_by(AuditEntryRow.seq.desc()).limit(1)
)


class AuditChainBroken(VaultError):
    """A stored entry does not match its hash or its predecessor: the log was altered."""

    code = "audit_chain_broken"


@dataclass(frozen=True)
class AuditEvent:
    """What happened: who did what to whose data, and whether it was allowed."""

    patient_id: str
    actor: str
    action: str
    outcome: str
    scope: str = ""
    purpose: str = ""
    record_id: str = ""
    reason: str = ""


_EVENT_FIELDS = tuple(f.name for f in fields(AuditEvent))


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    event: AuditEvent
    prev_hash: bytes
    entry_hash: bytes

    @property
    def leaf(self) -> bytes:
        return merkle.leaf_hash(self.entry_hash)


@dataclass(frozen=True)
class Anchor:
    first_seq: int
    last_seq: int
    root: bytes
    tx_hash: str
    block_number: int


class AnchorSink(Protocol):
    """Where roots go: the consent registry's anchoring function."""

    def next_audit_sequence(self) -> int:
        """The first sequence number not anchored yet (the sink is the source of truth)."""
        ...

    def anchor(self, *, root: bytes, first_seq: int, last_seq: int) -> tuple[str, int]:
        """Record the root on chain; return (transaction hash, block number)."""
        ...


_ENTRIES = AuditEntryRow.__table__
_INSERT_ENTRY = insert(AuditEntryRow)
#: One batch of entry hashes to anchor, in sequence order.
_ANCHOR_BATCH = (
    select(AuditEntryRow.entry_hash)
    .where(AuditEntryRow.seq > bindparam("after"), AuditEntryRow.seq <= bindparam("upto"))
    .order_by(AuditEntryRow.seq)
)


def _rows(entries: list[AuditEntry]) -> list[dict[str, object]]:
    return [
        {
            "seq": e.seq,
            "at": _utc_aware(e.at),
            "prev_hash": e.prev_hash,
            "entry_hash": e.entry_hash,
            **_fields(e.event),
        }
        for e in entries
    ]


def _utc_naive(at: datetime) -> datetime:
    """``at`` as naive UTC: what the hash covers, and what readers get on every database
    (PostgreSQL returns ``timestamptz`` values aware, SQLite naive)."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _utc_aware(at: datetime) -> datetime:
    """``at`` as aware UTC, as it is written: PostgreSQL would read a naive value in the
    session's time zone, which need not be UTC."""
    return _utc_naive(at).replace(tzinfo=UTC)


def tail_of(last: Row[int, bytes] | None) -> Tail:
    """The tail :data:`LAST_ENTRY` returned (its row, or None for an empty log)."""
    return (last[0], last[1]) if last is not None else (0, GENESIS_HASH)


def _fields(event: AuditEvent) -> dict[str, str]:
    # ``dataclasses.asdict`` deep-copies every value; the fields are all strings.
    return {name: getattr(event, name) for name in _EVENT_FIELDS}


def entry_hash(seq: int, at: datetime, event: AuditEvent, prev_hash: bytes) -> bytes:
    """The hash chaining an entry to its predecessor. Part of the public proof format:
    SHA-256 of the previous hash and :func:`entry_body`."""
    return hashlib.sha256(prev_hash + entry_body(seq, at, event)).digest()


def entry_body(seq: int, at: datetime, event: AuditEvent) -> bytes:
    """The entry as canonical JSON: ``json.dumps`` of the fields with sorted keys, compact
    separators and ASCII escapes.

    Written out field by field with ``json``'s own string encoder, because every provider
    read hashes one entry and building the dict for ``json.dumps`` cost three times as
    much (1.2 against 3.8 us); ``tests/audit/test_log.py`` checks the two agree on any
    text. A field that is not a string takes the ``json.dumps`` path itself.
    """
    at_text = _utc_naive(at).isoformat(timespec="microseconds")
    try:
        text = (
            f'{{"action":{_json_string(event.action)},"actor":{_json_string(event.actor)},'
            f'"at":{_json_string(at_text)},"outcome":{_json_string(event.outcome)},'
            f'"patient_id":{_json_string(event.patient_id)},'
            f'"purpose":{_json_string(event.purpose)},"reason":{_json_string(event.reason)},'
            f'"record_id":{_json_string(event.record_id)},"scope":{_json_string(event.scope)},'
            f'"seq":{int(seq)}}}'
        )
    except TypeError:
        text = json.dumps(
            {"seq": seq, "at": at_text, **_fields(event)}, sort_keys=True, separators=(",", ":")
        )
    return text.encode()


def _entry(row: Row[Any]) -> AuditEntry:
    event = AuditEvent(
        patient_id=row.patient_id,
        actor=row.actor,
        action=row.action,
        outcome=row.outcome,
        scope=row.scope,
        purpose=row.purpose,
        record_id=row.record_id,
        reason=row.reason,
    )
    return AuditEntry(row.seq, _utc_naive(row.at), event, row.prev_hash, row.entry_hash)


@dataclass
class _Pending:
    """One caller's event waiting for the group commit that writes it."""

    event: AuditEvent
    entry: AuditEntry | None = None
    error: BaseException | None = None


class AuditLog:
    """Append, read, verify and anchor the access log.

    Appends are group-committed: concurrent callers queue their events, and whichever
    caller takes the write lock first writes every queued event in one transaction while
    the others wait for it. Each caller returns only after the transaction holding its
    entry has committed (the read it audits has not been answered yet), so batching
    changes the cost of an append, not what it promises. The tail (sequence, hash) is
    remembered between batches; if another process appended meanwhile, the insert of the
    next sequence number collides on the primary key, and the batch re-reads the tail and
    retries. The same code runs on SQLite and PostgreSQL.
    """

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._factory = session_factory
        self._engine = engine_of(session_factory)
        self._clock = clock
        # The write lock: one batch at a time from this process. Other processes are
        # handled by the primary key and the retry loop.
        self._append_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._tail: Tail | None = None  # (seq, hash) last written here

    def append(self, event: AuditEvent) -> AuditEntry:
        """Append one entry at the tail. Raises :class:`DatabaseUnavailable` if it cannot."""
        pending = _Pending(event)
        with self._queue_lock:
            self._queue.append(pending)
        return self._settle(pending)

    async def append_async(self, event: AuditEvent) -> AuditEntry:
        """:meth:`append` for coroutines: the same code, its waiting done in a worker thread.

        The event is queued here, on the loop, before the hop to the thread, so every
        coroutine that reached this point meanwhile shares the next transaction. If the
        caller is cancelled the entry is still written; nobody waits for it.
        """
        pending = _Pending(event)
        with self._queue_lock:
            self._queue.append(pending)
        return await asyncio.to_thread(self._settle, pending)

    def _settle(self, pending: _Pending) -> AuditEntry:
        """Wait until ``pending`` is written, writing the queue if nobody else has."""
        with self._append_lock:
            if pending.entry is None and pending.error is None:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if pending.error is not None:
            # Every waiter of a failed batch gets its own copy (one shared exception
            # object would collect every thread's traceback).
            raise copy.copy(pending.error) from pending.error.__cause__
        assert pending.entry is not None
        return pending.entry

    def _write(self, batch: list[_Pending]) -> None:
        """Write ``batch`` in one transaction, settling every one of its callers."""
        last_error: Exception | None = None
        deadline = time.monotonic() + APPEND_DEADLINE_SECONDS
        try:
            for attempt in range(APPEND_ATTEMPTS):
                if attempt and time.monotonic() > deadline:
                    break
                try:
                    entries = self._insert(batch, reread_tail=attempt > 0)
                except (IntegrityError, OperationalError) as exc:
                    # Another process took this sequence number (or held the write lock).
                    self._tail = None
                    last_error = exc
                    time.sleep(min(0.002 * (attempt + 1), 0.05))
                    continue
                except DBAPIError as exc:  # refused outright (a missing table): no retry
                    last_error = exc
                    break
                for pending, entry in zip(batch, entries, strict=True):
                    pending.entry = entry
                return
            failure: BaseException = DatabaseUnavailable("could not append to the audit log")
            failure.__cause__ = last_error
        except BaseException as exc:  # settle the waiters whatever happened, then re-raise
            failure = exc
            self._tail = None
            for pending in batch:
                pending.error = failure
            raise
        for pending in batch:
            pending.error = failure

    def _insert(self, batch: list[_Pending], *, reread_tail: bool) -> list[AuditEntry]:
        # Core on a plain connection, not an ORM session: this runs on every provider read.
        with self._engine.begin() as conn:
            tail = None if reread_tail else self._tail
            if tail is None:
                tail = tail_of(conn.execute(LAST_ENTRY).first())
            entries = self._chained(batch, tail)
            conn.execute(_INSERT_ENTRY, _rows(entries))
        # Committed: only now is this the tail.
        self._tail = (entries[-1].seq, entries[-1].entry_hash)
        return entries

    def _chained(self, batch: list[_Pending], tail: Tail) -> list[AuditEntry]:
        seq, prev = tail
        entries: list[AuditEntry] = []
        for pending in batch:
            seq += 1
            at = _utc_naive(self._clock())
            digest = entry_hash(seq, at, pending.event, prev)
            entries.append(AuditEntry(seq, at, pending.event, prev, digest))
            prev = digest
        return entries

    def entries(
        self,
        *,
        patient_id: str | None = None,
        first: int = 1,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries with ``first <= seq <= last`` (of one patient if given), oldest first,
        at most ``limit`` of them. A page's cursor is its last entry's ``seq``: the next
        page starts at ``first = cursor + 1``."""
        query = self._range(patient_id=patient_id, first=first, last=last)
        if limit is not None:
            query = query.limit(limit)
        # Core rows, not ORM objects: verify_chain reads every entry through here.
        with self._engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def iter_entries(
        self,
        *,
        patient_id: str | None = None,
        first: int = 1,
        last: int | None = None,
        batch: int = READ_BATCH_ENTRIES,
    ) -> Iterator[AuditEntry]:
        """Every entry of :meth:`entries`, read ``batch`` at a time (keyset paging on the
        sequence number), so memory stays at one batch with a million entries. Each batch
        is its own short query: no read transaction stays open across the walk."""
        while True:
            page = self.entries(patient_id=patient_id, first=first, last=last, limit=batch)
            yield from page
            if len(page) < batch:
                return
            first = page[-1].seq + 1

    def leaves(self, *, first: int, last: int) -> list[bytes]:
        """The Merkle leaves of entries ``first..last`` (their hashes only, not entries)."""
        with self._engine.connect() as conn:
            digests = conn.execute(_ANCHOR_BATCH, {"after": first - 1, "upto": last}).scalars()
            return [merkle.leaf_hash(digest) for digest in digests]

    def verify_chain(self) -> int:
        """Recompute every hash; return the number of entries. Raises :class:`AuditChainBroken`.

        Streams the log (:meth:`iter_entries`): memory does not grow with its length."""
        prev = GENESIS_HASH
        count = 0
        for entry in self.iter_entries():
            count += 1
            if entry.seq != count or entry.prev_hash != prev:
                raise AuditChainBroken(f"audit entry {entry.seq} does not follow its predecessor")
            if entry_hash(entry.seq, entry.at, entry.event, prev) != entry.entry_hash:
                raise AuditChainBroken(f"audit entry {entry.seq} does not match its hash")
            prev = entry.entry_hash
        return count

    @staticmethod
    def _range(*, patient_id: str | None, first: int, last: int | None) -> Select[Any]:
        query = select(_ENTRIES).where(_ENTRIES.c.seq >= first).order_by(_ENTRIES.c.seq)
        if last is not None:
            query = query.where(_ENTRIES.c.seq <= last)
        if patient_id is not None:
            query = query.where(_ENTRIES.c.patient_id == patient_id)
        return query

    def anchors(self) -> list[Anchor]:
        with self._factory() as session:
            rows = session.scalars(select(AuditAnchorRow).order_by(AuditAnchorRow.first_seq))
            return [
                Anchor(r.first_seq, r.last_seq, r.root, r.tx_hash, r.block_number) for r in rows
            ]

    def anchor(self, sink: AnchorSink) -> Anchor | None:
        """Anchor every entry after the last anchored one. None when there is nothing new.

        Where anchoring starts is asked of the sink (the chain), not of the local table:
        a process that crashed between the anchoring transaction and its local note, or
        another process anchoring at the same time, cannot make this one skip or repeat
        a range. A race lost to another process surfaces as the contract's
        out-of-sequence error.
        """
        anchored = sink.next_audit_sequence() - 1
        with self._factory() as session:
            newest = session.scalar(select(func.max(AuditEntryRow.seq))) or 0
        if newest <= anchored:
            return None
        # The serving vault anchors on a schedule, in a thread that shares the GIL with
        # the event loop. A minute of reads at full load is some 200,000 entries, about
        # 0.3 s of interpreter work to read and hash: done in one go, the thread kept the
        # GIL for a switch interval (5 ms) each time the loop let go of it, and reads in
        # flight stalled for about 100 ms. So the hashes are read (through Core, not as
        # ORM entries) and hashed a batch at a time, and the GIL is handed back between
        # batches. Each batch is its own short query: one read held open across all of
        # them would pin SQLite's write-ahead log for a second, and the checkpoint after
        # it stalled writers. Entries never change once written, so nothing is lost by
        # not reading them in one snapshot.
        tree = merkle.TreeBuilder()
        with self._engine.connect() as conn:
            for after in range(anchored, newest, ANCHOR_BATCH_ENTRIES):
                upto = min(after + ANCHOR_BATCH_ENTRIES, newest)
                digests = conn.execute(_ANCHOR_BATCH, {"after": after, "upto": upto}).scalars()
                count = 0
                for digest in digests:
                    tree.append(merkle.leaf_hash(digest))
                    count += 1
                conn.rollback()  # ends the batch's read (PostgreSQL's transaction too)
                if count != upto - after:
                    raise AuditChainBroken(
                        "audit log has a gap in its sequence numbers",
                        details={"after": after, "upto": upto},
                    )
                time.sleep(0)  # releases the GIL: a waiting event loop takes it
        root = tree.root()
        tx_hash, block = sink.anchor(root=root, first_seq=anchored + 1, last_seq=newest)
        anchor = Anchor(anchored + 1, newest, root, tx_hash, block)
        with self._factory() as session, session.begin():
            session.add(
                AuditAnchorRow(
                    first_seq=anchor.first_seq,
                    last_seq=anchor.last_seq,
                    root=root,
                    tx_hash=tx_hash,
                    block_number=block,
                    anchored_at=_utc_aware(self._clock()),
                )
            )
        return anchor
