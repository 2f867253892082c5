"""The crash-safe write protocol shared by every operation that stores ciphertext.

1. Commit a ``pending_blobs`` row for each blob about to be written (an intent).
2. Write each blob (atomic in the blob store: temp file, fsync, rename).
3. In one transaction: the caller's checks and record rows, the version rows referencing
   the blobs, and deletion of the intents.

A SIGKILL before step 3 commits leaves no version row, so the record is absent, and an
intent naming every blob that might exist; after step 3 commits the record is wholly
present. :func:`reclaim` (run on failure, and by the sweeper for intents older than a
grace period, i.e. of writers that died) deletes the blobs no version references.
Deletion reuses the same table: the transaction that shreds a version nulls its blob
key and records an intent, so the ciphertext is removed even if the process dies next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from vault.errors import Conflict
from vault.store.blobs import BlobStore
from vault.store.database import transaction
from vault.store.record_models import PendingBlobRow, RecordVersionRow

_CHUNK = 500  # keys per IN (...) clause, well under every backend's parameter limit
_PARALLEL_PUTS = 8  # blob writes wait on fsync (or the network); threads overlap them


@dataclass
class SealedVersion:
    """A record version ready to store: its ciphertext and the row that will name it."""

    record_id: str
    version: int
    content_type: str
    size: int
    sha256: str
    wrapped_data_key: bytes
    blob_key: str
    ciphertext: bytes | bytearray

    def row(self, created_at: datetime) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "version": self.version,
            "content_type": self.content_type,
            "size": self.size,
            "blob_key": self.blob_key,
            "sha256": self.sha256,
            "wrapped_data_key": self.wrapped_data_key,
            "created_at": created_at,
        }


def chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_versions(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    versions: Sequence[SealedVersion],
    *,
    now: datetime,
    before_commit: Callable[[Session], None],
) -> None:
    """Store ``versions`` all or nothing; ``before_commit`` adds the caller's rows and
    checks inside the final transaction (raising there aborts the whole write)."""
    keys = [v.blob_key for v in versions]
    with transaction(sessions) as session:
        session.execute(insert(PendingBlobRow), [{"blob_key": k, "created_at": now} for k in keys])
    try:
        _put_all(blobs, versions)
        with transaction(sessions) as session:
            before_commit(session)
            session.execute(insert(RecordVersionRow), [v.row(now) for v in versions])
            cleared = 0
            for chunk in chunks(keys):
                result = session.execute(
                    delete(PendingBlobRow).where(PendingBlobRow.blob_key.in_(chunk))
                )
                cleared += result.rowcount  # type: ignore[attr-defined]
            if cleared != len(keys):
                # The sweeper judged this write dead (older than its grace period) and may
                # have removed blobs: committing now could reference missing ciphertext.
                raise Conflict("write outlived the sweep grace period; retry it")
    except BaseException:
        # Best effort: if this fails too (database gone), the sweeper finishes the job.
        with suppress(Exception):  # the original error matters more
            reclaim(sessions, blobs, keys)
        raise


def _put_all(blobs: BlobStore, versions: Sequence[SealedVersion]) -> None:
    if len(versions) <= 2:
        for v in versions:
            blobs.put(v.blob_key, v.ciphertext)
        return
    with ThreadPoolExecutor(max_workers=_PARALLEL_PUTS) as pool:
        for future in [pool.submit(blobs.put, v.blob_key, v.ciphertext) for v in versions]:
            future.result()


def reclaim(sessions: sessionmaker[Session], blobs: BlobStore, keys: Sequence[str]) -> int:
    """Delete the blobs among ``keys`` that no version references, then their intents.

    Checking references (rather than trusting the caller) makes this safe when a commit's
    outcome is unknown: a blob whose version did commit is kept.
    """
    reclaimed = 0
    for chunk in chunks(keys):
        with transaction(sessions) as session:
            referenced = set(
                session.scalars(
                    select(RecordVersionRow.blob_key).where(RecordVersionRow.blob_key.in_(chunk))
                )
            )
        orphans = [k for k in chunk if k not in referenced]
        for key in orphans:
            blobs.delete(key)
        with transaction(sessions) as session:
            session.execute(delete(PendingBlobRow).where(PendingBlobRow.blob_key.in_(chunk)))
        reclaimed += len(orphans)
    return reclaimed
