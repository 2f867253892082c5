"""Helper process for test_crash.py: forks writers on command, to be SIGKILLed.

Usage: python crash_writer.py DATABASE_URL BLOB_DIR KEYRING_HEX PATIENT_ID SAMPLE_DIR

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
from vault.records.service import RecordService
from vault.store.blobs import LocalBlobStore
from vault.store.database import make_engine, make_session_factory


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def run_child(
    seed: int, url: str, blob_dir: Path, keyring_hex: str, patient: str, sample: Path
) -> None:
    rng = random.Random(seed)
    service = RecordService(
        session_factory=make_session_factory(make_engine(url)),
        blobs=LocalBlobStore(blob_dir),
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
    url, blob_dir, keyring_hex, patient, sample = sys.argv[1:6]
    say("ready")
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                run_child(int(line), url, Path(blob_dir), keyring_hex, patient, Path(sample))
            finally:
                os._exit(1)
        say(f"child {pid}")
        os.waitpid(pid, 0)
        say("reaped")


if __name__ == "__main__":
    main()
