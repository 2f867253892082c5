"""After a whole story, the database, the blob store and the logs hold no face and no record.

The story runs on a vault with its own data dir, every ``logging`` record captured at
DEBUG in a file: enroll with three photos, verify, store FHIR resources and a document
carrying a canary string, a provider asks, the patient approves with a fresh photo, the
provider reads, the patient revokes, the log is anchored. Then the SQLite file (and its
-wal/-shm) or, on PostgreSQL, every row of every table, every file under the blob dir,
and the log file are scanned for:

* the 128-d embeddings of every photo used (FaceEncoder, the vault's own model): any two
  consecutive coordinates as float64 or float32 bytes, and three consecutive coordinates
  as text at 3, 4 or 6 decimals;
* image bytes: 64-byte slices from the middle of every photo file used;
* plaintext records: the canary string (and its base64) from the uploaded resources.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData

from tests.api.support import (
    FACES,
    OBAMA_ENROLL,
    OBAMA_PROBE,
    admin_headers,
    bearer,
    enroll,
    patient_session,
    photos_field,
)
from vault.biometrics.embedding import FaceEncoder
from vault.runtime import Vault

PHOTOS = (*OBAMA_ENROLL, OBAMA_PROBE)
CANARY = "CANARY-" + secrets.token_hex(12)


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "all.log"
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def _story(client: TestClient, new_provider: Callable[..., tuple[LocalAccount, str]]) -> None:
    handle = enroll(client, OBAMA_ENROLL)
    patient = bearer(patient_session(client, handle, OBAMA_PROBE))
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": f"heart rate {CANARY}"},
        "valueQuantity": {"value": 72, "unit": "beats/minute"},
        "note": [{"text": f"patient said {CANARY}"}],
    }
    created = client.post("/patient/records", json=observation, headers=patient)
    assert created.status_code == 201, created.json()
    record_id = created.json()["record_id"]
    pdf = b"%PDF-1.4\n% " + CANARY.encode() + b"\n%%EOF\n"
    doc = client.post(
        "/patient/records/documents",
        files={"file": ("note.pdf", pdf, "application/pdf")},
        data={"title": f"letter {CANARY}"},
        headers=patient,
    )
    assert doc.status_code == 201, doc.json()
    account, token = new_provider()
    provider = bearer(token)
    request = client.post(
        "/provider/requests",
        json={
            "patient": handle,
            "scope": "Observation",
            "purpose": "TREAT",
            "duration_seconds": 600,
        },
        headers=provider,
    )
    assert request.status_code == 201, request.json()
    approved = client.post(
        f"/patient/requests/{request.json()['request_id']}/approve",
        files=photos_field((OBAMA_PROBE,), "photo"),
        headers=patient,
    )
    assert approved.status_code == 200, approved.json()
    read = client.get(
        f"/provider/patients/{handle}/records/{record_id}?purpose=TREAT", headers=provider
    )
    assert read.status_code == 200 and CANARY in read.text
    revoked = client.post(
        "/patient/consents/revoke",
        files=photos_field((OBAMA_PROBE,), "photo"),
        data={"provider": account.address, "scope": "Observation", "purpose": "TREAT"},
        headers=patient,
    )
    assert revoked.status_code == 200, revoked.json()
    denied = client.get(
        f"/provider/patients/{handle}/records/{record_id}?purpose=TREAT", headers=provider
    )
    assert denied.status_code == 403
    assert client.post("/admin/audit/anchor", headers=admin_headers()).status_code == 200
    assert client.get("/patient/access-log", headers=patient).status_code == 200


def _needles() -> dict[str, list[bytes]]:
    encoder = FaceEncoder()
    needles: dict[str, list[bytes]] = {
        "embedding bytes": [],
        "embedding text": [],
        "image": [],
        "record": [],
    }
    for name in PHOTOS:
        data = (FACES / name).read_bytes()
        vector = encoder.encode(data).vector.astype(np.float64)
        for dtype in (np.float64, np.float32):
            raw = vector.astype(dtype).tobytes()
            width = 2 * np.dtype(dtype).itemsize
            step = np.dtype(dtype).itemsize
            needles["embedding bytes"] += [
                raw[i : i + width] for i in range(0, len(raw) - width + 1, step)
            ]
        for decimals in (3, 4, 6):
            text = [f"{v:.{decimals}f}" for v in vector]
            needles["embedding text"] += [
                re.escape(" ".join(text[i : i + 3])).encode() for i in range(0, 126, 3)
            ]
        for fraction in (3, 4, 5, 6, 7):
            start = len(data) * fraction // 10
            needles["image"].append(data[start : start + 64])
    needles["record"] = [CANARY.encode(), base64.b64encode(CANARY.encode())[:20]]
    return needles


def _rows_of_every_table(engine: Engine) -> bytes:
    """The database's content as stored: bytes columns as they are, the rest as text."""
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as conn:
        return b"\n".join(
            value if isinstance(value, bytes) else str(value).encode()
            for table in tables.sorted_tables
            for row in conn.execute(table.select())
            for value in row
        )


def _haystacks(vault: Vault, log: Path) -> dict[str, bytes]:
    settings = vault.settings
    db = settings.resolved_data_dir / "vault.db"
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), log]
    files += [p for p in settings.resolved_blob_dir.rglob("*") if p.is_file()]
    found = {str(p): p.read_bytes() for p in files if p.exists()}
    if vault.engine.dialect.name == "postgresql":
        found[f"postgresql:{vault.engine.url.database}"] = _rows_of_every_table(vault.engine)
    return found


def _hits(needles: dict[str, list[bytes]], name: str, content: bytes) -> list[tuple[str, str]]:
    # Numbers as text: loose separators (", " or " " or newline) between coordinates.
    flat = re.sub(rb"[,\s\[\]]+", b" ", content)
    found = []
    for kind, items in needles.items():
        for needle in items:
            text = kind == "embedding text"
            if (re.search(needle, flat) is not None) if text else needle in content:
                found.append((kind, name))
    return found


def test_the_scan_finds_what_is_planted() -> None:
    needles = _needles()
    vector = FaceEncoder().encode((FACES / OBAMA_PROBE).read_bytes()).vector
    planted = {
        "json": json.dumps([round(float(v), 6) for v in vector]).encode(),
        "float32": b"xx" + vector.astype(np.float32).tobytes()[40:80],
        "photo": b"yy" + (FACES / OBAMA_PROBE).read_bytes(),
        "record": json.dumps({"note": CANARY}).encode(),
    }
    for name, content in planted.items():
        assert _hits(needles, name, content), name


def test_no_embedding_image_or_plaintext_at_rest_or_in_logs(
    vault: Vault,
    client: TestClient,
    new_provider: Callable[..., tuple[LocalAccount, str]],
    debug_log: Path,
) -> None:
    _story(client, new_provider)
    needles = _needles()
    haystacks = _haystacks(vault, debug_log)
    assert any(name.endswith("vault.db") or name.startswith("postgresql:") for name in haystacks)
    assert len(haystacks) >= 4, list(haystacks)  # the database, the log, blobs
    assert debug_log.stat().st_size > 0
    found = [hit for name, content in haystacks.items() for hit in _hits(needles, name, content)]
    counts = {kind: len(items) for kind, items in needles.items()}
    total = sum(len(c) for c in haystacks.values())
    print(f"\nscanned {len(haystacks)} files, {total} bytes, needles {counts}: {len(found)} found")
    assert not found, found
