"""Helper process for test_crash.py: forks writers on command, to be SIGKILLed.

Usage: python crash_writer.py DATABASE_URL BLOB_STORE KEYRING_HEX PATIENT_ID SAMPLE_DIR

BLOB_STORE is JSON: ``{"dir": PATH}`` for the local store, or the keyword arguments of
``s3_client`` plus ``bucket`` and ``prefix`` for S3 (the test's moto server).

Imports once, then for each seed read from stdin forks a child that writes records
forever (puts, updates, documents, bundle imports), printing ``begin <op>`` before and
``done <op> <record-id> <version>`` after each committed write, each line in one
``write(2)`` so lines from successive children never interleave. The parent kills the
child with SIGKILL at a random moment; this process reaps it and prints ``reaped``.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

from vault.crypto.keyring import StaticKeyring, parse_keyring
from vault.records.fhir import parse_json, validate_resource
from vault.records.service import RecordService
from vault.store.blobs import BlobStore, LocalBlobStore
from vault.store.database import make_engine, make_session_factory
from vault.store.s3_blobs import S3BlobStore, s3_client


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def blob_store(spec: dict[str, str]) -> BlobStore:
    if "dir" in spec:
        return LocalBlobStore(Path(spec["dir"]))
    bucket, prefix = spec.pop("bucket"), spec.pop("prefix")
    return S3BlobStore(client=s3_client(**spec), bucket=bucket, prefix=prefix)


def run_child(
    seed: int, url: str, blobs: BlobStore, keyring_hex: str, patient: str, sample: Path
) -> None:
    rng = random.Random(seed)
    service = RecordService(
        session_factory=make_session_factory(make_engine(url)),
        blobs=blobs,
        keyring=StaticKeyring(parse_keyring(keyring_hex)),
    )
    bundle = json.loads((sample / "synthea-patient-bundle.json").read_bytes())
    bundle["entry"] = bundle["entry"][: rng.randint(5, 40)]
    pdf = (sample / "discharge-summary.pdf").read_bytes()
    mine: list[str] = []
    while True:
        op = rng.choice(["put", "put", "update", "document", "bundle"])
        say(f"begin {op}")
        if op == "put" or (op == "update" and not mine):
            obs = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "heart rate"},
                "valueQuantity": {"value": rng.randint(40, 200)},
                "note": [{"text": "x" * rng.randint(0, 200_000)}],
            }
            info = service.put_record(patient_id=patient, resource=obs)
            mine.append(info.record_id)
            say(f"done put {info.record_id} {info.version}")
        elif op == "update":
            record_id = rng.choice(mine)
            resource = service.get_record(patient_id=patient, record_id=record_id).resource()
            resource["valueQuantity"] = {"value": rng.randint(40, 200)}
            info = service.update_record(patient_id=patient, record_id=record_id, resource=resource)
            say(f"done update {info.record_id} {info.version}")
        elif op == "document":
            doc = service.put_document(
                patient_id=patient, content=pdf, content_type="application/pdf"
            )
            say(f"done document {doc.binary.record_id} 1")
            say(f"done document {doc.document_reference.record_id} 1")
        else:
            result = service.import_bundle(patient_id=patient, bundle=bundle)
            for record_id in result.record_ids:
                say(f"done bundle {record_id} 1")


def main() -> None:
    url, blobs, keyring_hex, patient, sample = sys.argv[1:6]
    # Built once, before any fork: a boto3 client loads its service model and the first
    # PostgreSQL engine imports psycopg (0.2-0.4 s each), which would otherwise delay each
    # child's first write past most kills. The parent sends no request and opens no
    # connection, so no child inherits one.
    store = blob_store(json.loads(blobs))
    make_engine(url).dispose()
    # Likewise the FHIR models, which fhir.resources imports on first use of each type.
    bundle = json.loads((Path(sample) / "synthea-patient-bundle.json").read_bytes())
    for entry in bundle["entry"]:
        validate_resource(parse_json(entry["resource"]))
    say("ready")
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                # The child names itself before its first write: said by the parent, the
                # line could come after the child's first "begin".
                say(f"child {os.getpid()}")
                run_child(int(line), url, store, keyring_hex, patient, Path(sample))
            finally:
                os._exit(1)
        os.waitpid(pid, 0)
        say("reaped")


if __name__ == "__main__":
    main()
