"""Envelope encryption: master key → patient key → data key → record.

- Each patient has a random 256-bit *patient key*, stored only wrapped (AES-256-GCM)
  under the newest master key; the associated data binds the patient id and the master
  key version. Destroying the wrapped patient key shreds every record of that patient.
- Each record *version* has a fresh random 256-bit *data key*, stored only wrapped
  under the patient key; the associated data binds record id, patient and version.
  Destroying a version's wrapped data key shreds that version.
- The record body is sealed under its data key; the associated data binds record id,
  patient, version and content type, so a ciphertext copied to another record, patient
  or version, or relabelled with another content type, fails to open.

Every failure to open anything raises the one opaque :class:`~vault.errors.DecryptionFailed`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vault.crypto.aead import KEY_BYTES, Random, associated_data, open_sealed, seal
from vault.crypto.keyring import MasterKeyring
from vault.errors import DecryptionFailed

PURPOSE_PATIENT_KEY = "patient-key/1"
PURPOSE_DATA_KEY = "data-key/1"
PURPOSE_RECORD = "record/1"


@dataclass(frozen=True)
class RecordContext:
    """What a record ciphertext is bound to. All four must match to open it."""

    record_id: str
    patient_id: str
    version: int
    content_type: str

    def record_aad(self) -> bytes:
        return associated_data(
            PURPOSE_RECORD, self.record_id, self.patient_id, str(self.version), self.content_type
        )

    def data_key_aad(self) -> bytes:
        return associated_data(PURPOSE_DATA_KEY, self.record_id, self.patient_id, str(self.version))


@dataclass(frozen=True)
class WrappedPatientKey:
    master_version: int
    wrapped: bytes


@dataclass(frozen=True)
class SealedRecord:
    ciphertext: bytearray
    wrapped_data_key: bytes


class PatientKey:
    """An unwrapped patient key, held only in memory for the duration of one operation."""

    __slots__ = ("_key", "patient_id")

    def __init__(self, patient_id: str, key: bytes) -> None:
        self.patient_id = patient_id
        self._key = key

    def __repr__(self) -> str:  # never print key material
        return f"PatientKey(patient_id={self.patient_id!r})"

    def encrypt(
        self, context: RecordContext, plaintext: bytes, *, random: Random = os.urandom
    ) -> SealedRecord:
        """Seal ``plaintext`` under a fresh data key, itself wrapped under this key."""
        if context.patient_id != self.patient_id:
            raise ValueError("record context names another patient")
        data_key = random(KEY_BYTES)
        ciphertext = seal(data_key, plaintext, context.record_aad(), random=random)
        wrapped = seal(self._key, data_key, context.data_key_aad(), random=random, reuse=True)
        return SealedRecord(ciphertext=ciphertext, wrapped_data_key=bytes(wrapped))

    def decrypt(
        self,
        context: RecordContext,
        ciphertext: bytes | bytearray | memoryview,
        wrapped_data_key: bytes | None,
    ) -> bytes:
        """Open a record version. ``wrapped_data_key`` None means it was shredded.

        Raises :class:`DecryptionFailed` for every failure, whatever its cause.
        """
        if wrapped_data_key is None or context.patient_id != self.patient_id:
            raise DecryptionFailed("ciphertext could not be opened")
        data_key = open_sealed(self._key, wrapped_data_key, context.data_key_aad(), reuse=True)
        return open_sealed(data_key, ciphertext, context.record_aad())


def _patient_aad(patient_id: str, master_version: int) -> bytes:
    return associated_data(PURPOSE_PATIENT_KEY, patient_id, str(master_version))


def new_patient_key(
    keyring: MasterKeyring, patient_id: str, *, random: Random = os.urandom
) -> tuple[PatientKey, WrappedPatientKey]:
    """A fresh patient key and its form wrapped under the newest master key."""
    key = random(KEY_BYTES)
    return PatientKey(patient_id, key), _wrap(keyring, patient_id, key, random=random)


def unwrap_patient_key(
    keyring: MasterKeyring, patient_id: str, wrapped: WrappedPatientKey | None
) -> PatientKey:
    """Open a wrapped patient key. None (shredded) or a retired master version fail opaquely."""
    if wrapped is None:
        raise DecryptionFailed("ciphertext could not be opened")
    master = keyring.key(wrapped.master_version)
    key = open_sealed(
        master, wrapped.wrapped, _patient_aad(patient_id, wrapped.master_version), reuse=True
    )
    return PatientKey(patient_id, key)


def rewrap_patient_key(
    keyring: MasterKeyring,
    patient_id: str,
    wrapped: WrappedPatientKey,
    *,
    random: Random = os.urandom,
) -> WrappedPatientKey:
    """The same patient key wrapped under the newest master key (records untouched)."""
    patient_key = unwrap_patient_key(keyring, patient_id, wrapped)
    return _wrap(keyring, patient_id, patient_key._key, random=random)


def _wrap(
    keyring: MasterKeyring, patient_id: str, key: bytes, *, random: Random
) -> WrappedPatientKey:
    version = keyring.current_version
    master = keyring.key(version)
    assert master is not None
    sealed = seal(master, key, _patient_aad(patient_id, version), random=random, reuse=True)
    return WrappedPatientKey(master_version=version, wrapped=bytes(sealed))
