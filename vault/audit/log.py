"""The hash-chained access log.

Each entry's hash covers its fields and the previous entry's hash, so rewriting or
dropping an entry breaks every later hash. Contiguous ranges of entries are anchored on
chain as Merkle roots; a patient receives their entries with inclusion proofs and checks
them against the roots the contract stores (``vault.audit.proofs``).

Appends are safe across processes: the sequence number is the primary key, so two
writers racing for the same number cannot both win; the loser re-reads the tail and
retries.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from vault.audit import merkle
from vault.errors import DatabaseUnavailable, VaultError
from vault.store.audit_models import AuditAnchorRow, AuditEntryRow
from vault.store.models import utcnow

GENESIS_HASH = b"\x00" * 32
APPEND_ATTEMPTS = 50
#: Each attempt may itself wait the database's busy timeout: bound the total, so a write
#: lock held by someone else turns into a prompt ``DatabaseUnavailable`` (503).
APPEND_DEADLINE_SECONDS = 10.0


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


def _utc_naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def entry_hash(seq: int, at: datetime, event: AuditEvent, prev_hash: bytes) -> bytes:
    """The hash chaining an entry to its predecessor. Part of the public proof format."""
    body = json.dumps(
        {"seq": seq, "at": _utc_naive(at).isoformat(timespec="microseconds"), **asdict(event)},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return hashlib.sha256(prev_hash + body).digest()


def _entry(row: AuditEntryRow) -> AuditEntry:
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
    return AuditEntry(row.seq, row.at, event, row.prev_hash, row.entry_hash)


class AuditLog:
    """Append, read, verify and anchor the access log."""

    def __init__(
        self, *, session_factory: sessionmaker[Session], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._factory = session_factory
        self._clock = clock
        # Serializes this process's appends: racing for the same sequence number inside
        # one process would only burn retries (and, on SQLite, busy waits). Other
        # processes are still handled by the primary key and the retry loop.
        self._append_lock = threading.Lock()

    def append(self, event: AuditEvent) -> AuditEntry:
        """Append one entry at the tail. Raises :class:`DatabaseUnavailable` if it cannot."""
        last_error: Exception | None = None
        deadline = time.monotonic() + APPEND_DEADLINE_SECONDS
        for attempt in range(APPEND_ATTEMPTS):
            if attempt and time.monotonic() > deadline:
                break
            try:
                with self._append_lock, self._factory() as session, session.begin():
                    tail = session.execute(
                        select(AuditEntryRow.seq, AuditEntryRow.entry_hash)
                        .order_by(AuditEntryRow.seq.desc())
                        .limit(1)
                    ).first()
                    seq = tail[0] + 1 if tail else 1
                    prev = tail[1] if tail else GENESIS_HASH
                    at = _utc_naive(self._clock())
                    digest = entry_hash(seq, at, event, prev)
                    session.add(
                        AuditEntryRow(
                            seq=seq, at=at, prev_hash=prev, entry_hash=digest, **asdict(event)
                        )
                    )
                return AuditEntry(seq, at, event, prev, digest)
            except (IntegrityError, OperationalError) as exc:
                # Another process took this sequence number (or held the write lock).
                last_error = exc
                time.sleep(min(0.002 * (attempt + 1), 0.05))
        raise DatabaseUnavailable("could not append to the audit log") from last_error

    def entries(
        self, *, patient_id: str | None = None, first: int = 1, last: int | None = None
    ) -> list[AuditEntry]:
        with self._factory() as session:
            query = (
                select(AuditEntryRow).where(AuditEntryRow.seq >= first).order_by(AuditEntryRow.seq)
            )
            if last is not None:
                query = query.where(AuditEntryRow.seq <= last)
            if patient_id is not None:
                query = query.where(AuditEntryRow.patient_id == patient_id)
            return [_entry(row) for row in session.scalars(query)]

    def verify_chain(self) -> int:
        """Recompute every hash; return the number of entries. Raises :class:`AuditChainBroken`."""
        prev = GENESIS_HASH
        count = 0
        for entry in self.entries():
            count += 1
            if entry.seq != count or entry.prev_hash != prev:
                raise AuditChainBroken(f"audit entry {entry.seq} does not follow its predecessor")
            if entry_hash(entry.seq, entry.at, entry.event, prev) != entry.entry_hash:
                raise AuditChainBroken(f"audit entry {entry.seq} does not match its hash")
            prev = entry.entry_hash
        return count

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
        leaves = [e.leaf for e in self.entries(first=anchored + 1, last=newest)]
        root = merkle.root(leaves)
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
                    anchored_at=_utc_naive(self._clock()),
                )
            )
        return anchor
