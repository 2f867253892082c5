"""Whole-store checks: tamper scan (``vault verify``) and the orphan sweeper."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from vault.crypto.envelope import PatientKeyCache, RecordContext, WrappedPatientKey
from vault.crypto.keyring import MasterKeyring
from vault.errors import DecryptionFailed, NotFound
from vault.records.types import IntegrityProblem, IntegrityReport, SweepReport
from vault.records.writes import reclaim
from vault.store.blobs import BlobStore
from vault.store.database import transaction
from vault.store.record_models import PatientRow, PendingBlobRow, RecordRow, RecordVersionRow

_PAGE = 1000


def verify_store(
    sessions: sessionmaker[Session], blobs: BlobStore, keyring: MasterKeyring | None
) -> IntegrityReport:
    """Check every live version's ciphertext against its recorded SHA-256.

    Reports missing and altered ciphertext and blobs nothing references. With a
    ``keyring`` (deep mode) also opens every version, which catches tampering with the
    database itself (swapped wrapped keys or hashes), at the cost of decrypting it all.
    """
    problems: list[IntegrityProblem] = []
    referenced: set[str] = set()
    checked = 0
    last: tuple[str, int] = ("", 0)
    patient_keys = PatientKeyCache()  # one unwrap per patient, not per version
    while True:
        with transaction(sessions) as session:
            page = session.execute(
                select(
                    RecordVersionRow.record_id,
                    RecordVersionRow.version,
                    RecordVersionRow.blob_key,
                    RecordVersionRow.sha256,
                    RecordVersionRow.content_type,
                    RecordVersionRow.wrapped_data_key,
                    PatientRow,
                )
                .join(RecordRow, RecordRow.id == RecordVersionRow.record_id)
                .join(PatientRow, PatientRow.id == RecordRow.patient_id)
                .where(
                    RecordVersionRow.blob_key.is_not(None),
                    (RecordVersionRow.record_id > last[0])
                    | (
                        (RecordVersionRow.record_id == last[0])
                        & (RecordVersionRow.version > last[1])
                    ),
                )
                .order_by(RecordVersionRow.record_id, RecordVersionRow.version)
                .limit(_PAGE)
            ).all()
        for record_id, version, blob_key, sha256, content_type, wrapped_data_key, patient in page:
            checked += 1
            assert blob_key is not None  # filtered in the query
            referenced.add(blob_key)
            try:
                ciphertext = blobs.get(blob_key)
            except NotFound:
                problems.append(IntegrityProblem("missing_blob", blob_key, record_id, version))
                continue
            if hashlib.sha256(ciphertext).hexdigest() != sha256:
                problems.append(IntegrityProblem("hash_mismatch", blob_key, record_id, version))
                continue
            if keyring is not None:
                try:
                    key = patient_keys.unwrap(
                        keyring,
                        patient.id,
                        WrappedPatientKey(patient.master_key_version or 0, patient.wrapped_key)
                        if patient.wrapped_key is not None
                        else None,
                    )
                    context = RecordContext(record_id, patient.id, version, content_type)
                    key.decrypt(context, ciphertext, wrapped_data_key)
                except DecryptionFailed:
                    problems.append(IntegrityProblem("undecryptable", blob_key, record_id, version))
        if len(page) < _PAGE:
            break
        last = (page[-1][0], page[-1][1])
    with transaction(sessions) as session:
        pending = set(session.scalars(select(PendingBlobRow.blob_key)))
    seen = 0
    for blob_key in blobs.list_keys():
        seen += 1
        if blob_key not in referenced and blob_key not in pending:
            problems.append(IntegrityProblem("unreferenced_blob", blob_key))
    return IntegrityReport(
        versions_checked=checked, blobs_seen=seen, problems=problems, deep=keyring is not None
    )


def sweep(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    *,
    now: datetime,
    older_than_seconds: float,
) -> SweepReport:
    """Finish what dead writers and deleters left: reclaim intents older than the grace
    period, delete blobs older than it that nothing references, and the blob store's
    interrupted temporary files.

    The grace period must exceed the longest write (a large bundle import); younger
    intents may belong to a writer still running in another process.
    """
    cutoff = now - timedelta(seconds=older_than_seconds)
    with transaction(sessions) as session:
        keys = list(
            session.scalars(
                select(PendingBlobRow.blob_key).where(PendingBlobRow.created_at <= cutoff)
            )
        )
    reclaimed = reclaim(sessions, blobs, keys)
    unreferenced = _remove_unreferenced(sessions, blobs, blobs.list_keys(modified_before=cutoff))
    removed = blobs.remove_incomplete(older_than_seconds=older_than_seconds)
    return SweepReport(
        pending_reclaimed=reclaimed, temp_files_removed=removed, unreferenced_removed=unreferenced
    )


def _remove_unreferenced(
    sessions: sessionmaker[Session], blobs: BlobStore, keys: Iterator[str]
) -> int:
    """Delete the blobs among ``keys`` (all older than the grace period) that no version
    references and no intent names.

    An intent is reclaimed before its blob is known to exist, so a blob can outlive it: on
    an object store the server may finish the PUT of a writer killed mid-request after
    the sweep reclaimed that writer's intent. Keys are fresh random names never reused, so
    a blob that nothing names now is never named later.
    """
    removed = 0
    while chunk := list(islice(keys, _PAGE)):
        with transaction(sessions) as session:
            # One statement, one snapshot: a concurrent shred moves a key from its version
            # row to an intent in one transaction, and this sees one side or the other.
            named = set(
                session.scalars(
                    union(
                        select(RecordVersionRow.blob_key).where(
                            RecordVersionRow.blob_key.in_(chunk)
                        ),
                        select(PendingBlobRow.blob_key).where(PendingBlobRow.blob_key.in_(chunk)),
                    )
                )
            )
        for key in chunk:
            if key not in named:
                blobs.delete(key)
                removed += 1
    return removed
