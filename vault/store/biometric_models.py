"""Tables of the biometric gate: protected templates and failed-attempt counters.

A template row holds only what ``vault.biometrics.template.ProtectedTemplate`` holds:
a salt, a keyed commitment of κ, and AES-GCM-sealed helper data. No embedding, no
image, no bit string of a face.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.store.models import Base, utcnow


class ProtectedTemplateColumns:
    """What a stored template is, current or staged: its id, the protected template's
    parts, and the public address of the key it yields."""

    handle: Mapped[str] = mapped_column(String(128), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(32), unique=True)
    scheme: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(String(64))
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))
    helper_nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    helper_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    signing_address: Mapped[str] = mapped_column(String(42))


class BiometricTemplateRow(ProtectedTemplateColumns, Base):
    """The current protected template of one patient handle (re-enrollment replaces it)."""

    __tablename__ = "biometric_templates"

    generation: Mapped[int] = mapped_column(Integer, default=1)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BiometricAttemptRow(Base):
    """Failed verification counter of one handle (known or not: no enumeration oracle)."""

    __tablename__ = "biometric_attempts"

    handle: Mapped[str] = mapped_column(String(128), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BiometricStagedTemplateRow(ProtectedTemplateColumns, Base):
    """A re-enrollment's new template, stored before the chain is asked to rotate the key.

    The second template slot: if the process dies after the rotation's receipt but before
    the new template replaces the current one, the next verification of the handle finds
    it here, asks the chain which key it names, and finishes (or drops) the re-enrollment.
    """

    __tablename__ = "biometric_staged_templates"

    staged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
