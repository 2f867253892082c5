"""Typed values the record service takes and returns."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vault.config import Settings

#: Returns the current time (timezone-aware UTC). Injectable for tests.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RecordLimits:
    """Size limits; beyond them the service raises :class:`~vault.errors.PayloadTooLarge`."""

    record_max_bytes: int = 1 << 20
    document_max_bytes: int = 25 << 20
    bundle_max_bytes: int = 64 << 20
    bundle_max_entries: int = 20_000

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordLimits:
        return cls(
            record_max_bytes=settings.record_max_bytes,
            document_max_bytes=settings.document_max_bytes,
            bundle_max_bytes=settings.bundle_max_bytes,
            bundle_max_entries=settings.bundle_max_entries,
        )


@dataclass(frozen=True)
class RecordInfo:
    """A record's metadata (no content)."""

    record_id: str
    patient_id: str
    resource_type: str
    category: str
    version: int
    content_type: str
    created_at: datetime
    updated_at: datetime
    deleted: bool = False
    security_context_id: str | None = None


@dataclass(frozen=True)
class StoredRecord:
    """One decrypted version of a record."""

    info: RecordInfo
    version: int
    content_type: str
    content: bytes

    def resource(self) -> dict[str, Any]:
        """The FHIR resource (JSON records only)."""
        value: dict[str, Any] = json.loads(self.content)
        return value


@dataclass(frozen=True)
class VersionInfo:
    """One entry of a record's history. ``shredded`` once its data key is destroyed."""

    record_id: str
    version: int
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    shredded: bool


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document: its bytes as a Binary record, described by a DocumentReference."""

    document_reference: RecordInfo
    binary: RecordInfo


@dataclass(frozen=True)
class ImportResult:
    """What :meth:`RecordService.import_bundle` stored."""

    patient_id: str
    record_ids: list[str]
    by_category: dict[str, int]
    #: ``entry.fullUrl`` (e.g. ``urn:uuid:...``) → the vault record id it became.
    id_map: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.record_ids)


@dataclass(frozen=True)
class IntegrityProblem:
    """One finding of :func:`vault.records.integrity.verify_store`."""

    kind: str  # "hash_mismatch" | "missing_blob" | "undecryptable" | "unreferenced_blob"
    blob_key: str
    record_id: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class IntegrityReport:
    versions_checked: int
    blobs_seen: int
    problems: list[IntegrityProblem]
    deep: bool

    @property
    def tampered(self) -> list[IntegrityProblem]:
        return [p for p in self.problems if p.kind != "unreferenced_blob"]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class SweepReport:
    pending_reclaimed: int
    temp_files_removed: int
    #: Blobs past the grace period that no version references and no intent names.
    unreferenced_removed: int = 0
