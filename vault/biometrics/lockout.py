"""Failed-verification counting with lockout and exponential backoff, per patient handle.

An attempt is counted as failed *before* the face is compared and forgiven only on a
match, so parallel attempts cannot slip past the counter. After ``threshold``
consecutive failures the handle is locked for ``base * 2^(failures - threshold)``
seconds (capped), and a locked handle is refused without looking at the face. An
attacker holding a face data set therefore gets about ``threshold`` tries, then one try
per growing interval: roughly FMR successes per try, few tries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Executable, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from vault.errors import BiometricLockedOut
from vault.store.biometric_models import BiometricAttemptRow
from vault.store.models import stored_utc


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int = 5
    base_seconds: float = 30.0
    max_seconds: float = 86_400.0
    #: A handle not locked and silent this long loses its counter (see :func:`prune`).
    forget_after_seconds: float = 7 * 86_400.0

    def delay(self, failures: int) -> float:
        """Seconds to lock after ``failures`` consecutive failures (0 below threshold)."""
        if failures < self.threshold:
            return 0.0
        exponent = min(failures - self.threshold, 40)
        return float(min(self.max_seconds, self.base_seconds * (2**exponent)))


def begin_attempt(session: Session, *, handle: str, policy: LockoutPolicy, now: datetime) -> None:
    """Refuse a locked handle, else count this attempt as a failure until it matches.

    The count is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: the
    database adds one atomically (no read-then-write a parallel attempt could slip
    between, no insert race on a new handle), and the lock is decided from the count it
    returns. That statement holds the row (PostgreSQL) or the database's write lock
    (SQLite, where it is the transaction's first statement) until the caller commits, so
    setting ``locked_until`` after it cannot race either. A locked handle's count is not
    raised: waiting out the lock is all it takes.

    Raises :class:`BiometricLockedOut` with ``details['retry_after']`` (seconds).
    """
    row = BiometricAttemptRow
    locked = row.locked_until.is_not(None) & (row.locked_until > now)
    statement = _upsert(
        session,
        values={"handle": handle, "consecutive_failures": 1, "last_attempt_at": now},
        set_={
            "consecutive_failures": case(
                (locked, row.consecutive_failures),
                else_=row.consecutive_failures + 1,
            ),
            "last_attempt_at": now,
        },
        returning=(row.consecutive_failures, row.locked_until),
    )
    counted, stored_until = session.execute(statement).one()
    locked_until = stored_utc(stored_until)
    if locked_until is not None and locked_until > now:
        retry_after = max(1, int((locked_until - now).total_seconds() + 0.999))
        raise BiometricLockedOut(
            "too many failed face verifications; try again later",
            details={"retry_after": retry_after},
        )
    delay = policy.delay(counted)
    if delay:
        session.execute(
            update(BiometricAttemptRow)
            .where(BiometricAttemptRow.handle == handle)
            .values(locked_until=now + timedelta(seconds=delay))
        )


def forgive(session: Session, *, handle: str) -> None:
    """A match: clear the handle's failure count and lock (one statement, no read)."""
    session.execute(
        update(BiometricAttemptRow)
        .where(BiometricAttemptRow.handle == handle)
        .values(consecutive_failures=0, locked_until=None)
    )


def _upsert(
    session: Session,
    *,
    values: dict[str, Any],
    set_: dict[str, Any],
    returning: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...],
) -> Executable:
    """Insert ``values`` or, if the handle has a row, update it with ``set_``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(BiometricAttemptRow).values(values)
        return pg.on_conflict_do_update(index_elements=["handle"], set_=set_).returning(*returning)
    if dialect == "sqlite":
        lite = sqlite.insert(BiometricAttemptRow).values(values)
        return lite.on_conflict_do_update(index_elements=["handle"], set_=set_).returning(
            *returning
        )
    raise NotImplementedError(f"attempt counting has no upsert for the {dialect} dialect")


def prune(session: Session, *, now: datetime, idle: timedelta) -> int:
    """Delete counters that no longer hold anything back; return how many.

    Every attempt on an unknown handle creates a row (no enumeration oracle), so without
    pruning anyone can grow the table one photo at a time. A row goes when it counts no
    failures (forgiven by a match: the same as no row), or when its handle is not locked
    and has seen no attempt for ``idle``: such a handle regains ``threshold`` tries after
    ``idle`` of silence, against one try per day at the cap if it were kept.
    """
    row = BiometricAttemptRow
    not_locked = row.locked_until.is_(None) | (row.locked_until <= now)
    stale = row.last_attempt_at.is_(None) | (row.last_attempt_at < now - idle)
    result = session.execute(
        delete(row).where((row.consecutive_failures == 0) | (not_locked & stale))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def failures(session: Session, *, handle: str) -> int:
    row = session.get(BiometricAttemptRow, handle)
    return 0 if row is None else row.consecutive_failures
