"""Two OS processes append to one audit log at once, on SQLite and on PostgreSQL.

The checks here are the test's own: it reads the table's rows with a plain select and recomputes the
hash chain from the published rule (SHA-256 of the previous hash and the entry's canonical
JSON), without ``AuditLog.verify_chain``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from vault.store.audit_models import AuditEntryRow

WORKER = Path(__file__).with_name("append_worker.py")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PER_PROCESS = 1000
_ENTRIES = AuditEntryRow.__table__


_FIELDS = (
    "seq",
    "patient_id",
    "actor",
    "action",
    "outcome",
    "scope",
    "purpose",
    "record_id",
    "reason",
)


def _expected_hash(prev: bytes, row: dict[str, Any]) -> bytes:
    at: datetime = row["at"]
    if at.tzinfo is not None:  # PostgreSQL returns timestamptz aware, SQLite naive UTC
        at = at.astimezone(UTC).replace(tzinfo=None)
    body = {key: row[key] for key in _FIELDS} | {"at": at.isoformat(timespec="microseconds")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(prev + canonical.encode()).digest()


def test_two_processes_append_every_entry_exactly_once_on_one_chain(
    database_url: str, engine: Engine
) -> None:
    start_at = time.time() + 2.0  # both have imported by then
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), database_url, name, str(PER_PROCESS), str(start_at)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("api-1", "api-2")
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
        assert out.split() == ["done"]

    with engine.connect() as conn:
        rows = [
            dict(row._mapping) for row in conn.execute(select(_ENTRIES).order_by(_ENTRIES.c.seq))
        ]
    assert [row["seq"] for row in rows] == list(range(1, 2 * PER_PROCESS + 1))
    ids = Counter(row["record_id"] for row in rows)
    expected = {f"{name}-{n}" for name in ("api-1", "api-2") for n in range(PER_PROCESS)}
    assert set(ids) == expected and set(ids.values()) == {1}  # each exactly once
    # the processes really raced: the chain passes from one to the other and back
    actors = [row["actor"] for row in rows]
    switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
    assert switches >= 2, "the two processes did not overlap"
    prev = b"\x00" * 32
    for row in rows:
        assert bytes(row["prev_hash"]) == prev, f"entry {row['seq']} forks the chain"
        assert bytes(row["entry_hash"]) == _expected_hash(prev, row), row["seq"]
        prev = bytes(row["entry_hash"])
