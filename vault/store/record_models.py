"""Tables of the record store: patients, records, record versions, pending blob writes.

Ciphertext never enters SQL; these rows hold metadata, the SHA-256 of each ciphertext,
and the wrapped keys. Setting a wrapped key to NULL is crypto-shredding: the row stays
as the tombstone the audit trail needs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.store.models import Base, utcnow

ID_LENGTH = 64
BLOB_KEY_LENGTH = 200


class PatientRow(Base):
    """A patient's key, wrapped under one master key version. NULL once shredded."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    master_key_version: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecordRow(Base):
    """One health record (all its versions share the id)."""

    __tablename__ = "records"
    __table_args__ = (Index("ix_records_patient_category", "patient_id", "category"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(64))
    #: The consent scope that governs this record: its resource type, except a document's
    #: Binary, which is governed by its DocumentReference (FHIR ``Binary.securityContext``).
    category: Mapped[str] = mapped_column(String(64))
    #: For a document's Binary: the DocumentReference record it belongs to.
    security_context_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), nullable=True, index=True
    )
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RecordVersionRow(Base):
    """One immutable version. Only deletion changes it: keys and blob key become NULL."""

    __tablename__ = "record_versions"

    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str | None] = mapped_column(
        String(BLOB_KEY_LENGTH), nullable=True, unique=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    wrapped_data_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PendingBlobRow(Base):
    """A blob that may exist in the blob store without a version referencing it.

    Inserted (and committed) before a blob is written, deleted in the transaction that
    commits the version; inserted again when a version is deleted. The sweeper removes
    the blob of every row older than a grace period, then the row.
    """

    __tablename__ = "pending_blobs"

    blob_key: Mapped[str] = mapped_column(String(BLOB_KEY_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
