"""SIGKILL at any moment during a write leaves each record wholly present or absent,
and, once the sweeper has run, no ciphertext that nothing references: on each database,
with blobs in a local directory and on S3 (moto's server, ``tests/store/blob_backends``)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.store.blob_backends import (
    S3_ACCESS_KEY_ID,
    S3_REGION,
    S3_SECRET_ACCESS_KEY,
    blob_backend,
    blob_store,
    s3_server,
)
from vault.crypto.keyring import StaticKeyring
from vault.errors import VaultError
from vault.records.service import RecordService
from vault.store.blobs import BlobStore, LocalBlobStore
from vault.store.database import transaction
from vault.store.record_models import RecordRow
from vault.store.s3_blobs import S3BlobStore

WRITER = Path(__file__).with_name("crash_writer.py")
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "fhir"
KILLS = int(os.environ.get("VAULT_CRASH_KILLS", "100"))
#: On the S3 server every kill's deep verification reads every blob back over HTTP (the
#: store grows with each kill: quadratic), 100 kills took about 9 minutes: fewer kills there.
S3_KILLS = int(os.environ.get("VAULT_CRASH_KILLS_S3", "30"))

# Fixtures from tests/store/blob_backends.py: an empty blob store of each backend.
__all__ = ["blob_backend", "blob_store", "s3_server"]


def _writer_spec(blobs: BlobStore, endpoint_url: str | None) -> str:
    """How crash_writer.py reaches the same store (JSON, see its docstring)."""
    if isinstance(blobs, LocalBlobStore):
        return json.dumps({"dir": str(blobs.root)})
    assert isinstance(blobs, S3BlobStore) and endpoint_url is not None
    return json.dumps(
        {
            "endpoint_url": endpoint_url,
            "region": S3_REGION,
            "access_key_id": S3_ACCESS_KEY_ID,
            "secret_access_key": S3_SECRET_ACCESS_KEY,
            "bucket": blobs.bucket,
            "prefix": blobs.prefix,
        }
    )


def _leftovers(blobs: BlobStore) -> list[str]:
    """What an interrupted write can leave besides whole blobs: temp files, uploads."""
    if isinstance(blobs, LocalBlobStore):
        return [str(p) for p in blobs.root.rglob(".tmp-*")]
    assert isinstance(blobs, S3BlobStore)
    reply = blobs._client.list_multipart_uploads(Bucket=blobs.bucket, Prefix=blobs.prefix)
    return [upload["Key"] for upload in reply.get("Uploads", ())]


def _half_records(service: RecordService, patient: str) -> list[str]:
    """Records that are not wholly readable: a missing or unopenable version."""
    half = []
    with transaction(service._sessions) as session:
        records = list(session.scalars(select(RecordRow).where(RecordRow.patient_id == patient)))
        orphan_rows = session.execute(
            text(
                "SELECT count(*) FROM records r LEFT JOIN record_versions v "
                "ON v.record_id = r.id AND v.version = r.current_version WHERE v.record_id IS NULL"
            )
        ).scalar_one()
    if orphan_rows:
        half.append(f"{orphan_rows} record rows without their current version")
    for record in records:
        for version in range(1, record.current_version + 1):
            try:
                service.get_record(patient_id=patient, record_id=record.id, version=version)
            except VaultError as exc:
                half.append(f"{record.id} v{version}: {exc.code}")
    return half


@pytest.mark.slow
def test_sigkill_mid_write_never_leaves_half_records(
    database_url: str,
    session_factory: sessionmaker[Session],
    keyring: StaticKeyring,
    blob_store: BlobStore,
    request: pytest.FixtureRequest,
) -> None:
    blobs = blob_store
    endpoint = None if isinstance(blobs, LocalBlobStore) else request.getfixturevalue("s3_server")
    kills = KILLS if endpoint is None else S3_KILLS
    service = RecordService(session_factory=session_factory, blobs=blobs, keyring=keyring)
    patient = service.create_patient()
    writer = subprocess.Popen(
        [
            sys.executable,
            str(WRITER),
            database_url,
            _writer_spec(blobs, None if endpoint is None else endpoint.endpoint_url),
            keyring.get().to_json().replace("\n", ""),
            patient,
            str(SAMPLE),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert writer.stdin is not None and writer.stdout is not None
    rng = random.Random(1234)
    acknowledged: dict[str, int] = {}
    mid_write = swept_blobs = swept_unreferenced = swept_temp = 0
    try:
        assert writer.stdout.readline().strip() == "ready"
        for kill in range(kills):
            writer.stdin.write(f"{kill}\n")
            writer.stdin.flush()
            child = int(writer.stdout.readline().split()[1])
            time.sleep(rng.uniform(0.02, 0.4))
            os.kill(child, signal.SIGKILL)
            last = ""
            for line in iter(writer.stdout.readline, ""):
                line = line.strip()
                if line == "reaped":
                    break
                last = line
                if line.startswith("done "):
                    _done, _op, record_id, version = line.split()
                    acknowledged[record_id] = max(acknowledged.get(record_id, 0), int(version))
            mid_write += last.startswith("begin")
            # Recovery as a restarted vault does it: sweep intents of dead writers.
            swept = service.sweep(older_than_seconds=0)
            swept_blobs += swept.pending_reclaimed
            swept_unreferenced += swept.unreferenced_removed
            swept_temp += swept.temp_files_removed
            report = service.verify(deep=True)
            assert report.tampered == [], (kill, report.problems[:5])
            if isinstance(blobs, LocalBlobStore):
                # Nothing outlives a killed process's own writes here. On S3 the server can
                # still finish a PUT the dead writer sent: the next sweep removes it.
                assert report.ok, (kill, report.problems[:5])
            assert _leftovers(blobs) == [], kill
    finally:
        writer.kill()
        writer.wait()
    time.sleep(0.5)  # let the S3 server finish any request a dead writer sent
    final = service.sweep(older_than_seconds=0)
    swept_blobs += final.pending_reclaimed
    swept_unreferenced += final.unreferenced_removed
    report = service.verify(deep=True)
    assert report.ok, report.problems[:5]  # no orphan that nothing sweeps
    half = _half_records(service, patient)
    listed = {r.record_id: r.version for r in service.list_records(patient_id=patient)}
    lost = [rid for rid, version in acknowledged.items() if listed.get(rid, 0) < version]
    print(
        f"\ncrash test: {kills} SIGKILLs ({mid_write} mid-write), {len(listed)} records stored, "
        f"{len(half)} half records, {len(lost)} acknowledged writes lost; the sweeper removed "
        f"{swept_blobs} blobs of dead writers' intents, {swept_unreferenced} blobs nothing "
        f"named and {swept_temp} partial files left by the kills"
    )
    assert half == []
    assert lost == []
    assert mid_write >= kills // 2  # the kills really landed inside writes
