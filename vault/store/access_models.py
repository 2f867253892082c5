"""Patients' accounts (handle -> record store id, chain id, controller) and access requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.store.models import Base


class PatientAccountRow(Base):
    __tablename__ = "patient_accounts"

    handle: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_patient_id: Mapped[str] = mapped_column(String(64), unique=True)
    chain_patient_id: Mapped[str] = mapped_column(String(66), unique=True)
    controller: Mapped[str] = mapped_column(String(42))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AccessRequestRow(Base):
    __tablename__ = "access_requests"

    request_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    patient_handle: Mapped[str] = mapped_column(String(64), index=True)
    provider: Mapped[str] = mapped_column(String(42), index=True)
    scope: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    duration_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
