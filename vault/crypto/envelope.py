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

Record formats. The first byte of the wrapped data key names the format of the version;
the format is also part of both purposes in the associated data, so relabelling a wrapped
key with another format byte makes it fail to open. Format 1 is written, both are read.

- **Format 1**: data key and body each sealed by :func:`~vault.crypto.aead.seal`
  (``0x01 || random nonce || ciphertext || tag``), purposes ``data-key/1``, ``record/1``.
- **Format 2** (read only; written for a while by earlier versions): wrapped data key =
  ``0x02 || nonce (12, random) || AES-256-GCM(patient key, data key) || tag``, purpose
  ``data-key/2``; body = ``AES-256-GCM(data key, nonce = 12 zero bytes) || tag``, purpose
  ``record/2``, with no header. The fixed nonce was safe because each data key is random
  and seals exactly one body.

Every failure to open anything raises the one opaque :class:`~vault.errors.DecryptionFailed`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto.aead import (
    FORMAT_V1,
    HEADER_BYTES,
    KEY_BYTES,
    NONCE_BYTES,
    OPAQUE,
    OVERHEAD_BYTES,
    Random,
    associated_data,
    encode_field,
    open_gcm,
    open_sealed,
    open_sealed_with,
    purpose_prefix,
    seal,
    seal_with,
)
from vault.crypto.keyring import MasterKeyring
from vault.errors import DecryptionFailed

FORMAT_V2 = 0x02
PURPOSE_PATIENT_KEY = "patient-key/1"
PURPOSE_DATA_KEY = {FORMAT_V1: "data-key/1", FORMAT_V2: "data-key/2"}
PURPOSE_RECORD = {FORMAT_V1: "record/1", FORMAT_V2: "record/2"}
#: Length of a wrapped data key, in every format: format, nonce, key, tag.
WRAPPED_KEY_BYTES = OVERHEAD_BYTES + KEY_BYTES

_DATA_KEY_V1 = purpose_prefix(PURPOSE_DATA_KEY[FORMAT_V1])
_DATA_KEY_V2 = purpose_prefix(PURPOSE_DATA_KEY[FORMAT_V2])
_RECORD_V1 = purpose_prefix(PURPOSE_RECORD[FORMAT_V1])
_RECORD_V2 = purpose_prefix(PURPOSE_RECORD[FORMAT_V2])
_ZERO_NONCE = bytes(NONCE_BYTES)


@lru_cache(maxsize=256)
def _content_type_field(content_type: str) -> bytes:
    # A handful of content types exist (FHIR JSON, PDF, PNG, ...): encode each once.
    return encode_field(content_type)


@lru_cache(maxsize=1024)
def _version(version: int) -> bytes:
    # the version as associated_data encodes str(version); most records have few versions
    return encode_field(str(version))


class RecordContext(NamedTuple):
    """What a record ciphertext is bound to. All four must match to open it."""

    record_id: str
    patient_id: str
    version: int
    content_type: str

    def record_aad(self, record_format: int = FORMAT_V1) -> bytes:
        """The body's associated data (reference encoding, see :func:`associated_data`)."""
        return associated_data(
            PURPOSE_RECORD[record_format],
            self.record_id,
            self.patient_id,
            str(self.version),
            self.content_type,
        )

    def data_key_aad(self, record_format: int = FORMAT_V1) -> bytes:
        """The wrapped data key's associated data (reference encoding)."""
        return associated_data(
            PURPOSE_DATA_KEY[record_format], self.record_id, self.patient_id, str(self.version)
        )


class WrappedPatientKey(NamedTuple):
    master_version: int
    wrapped: bytes


class SealedRecord(NamedTuple):
    """A sealed record version: the body to store as a blob, the key for its row."""

    ciphertext: bytes | bytearray
    wrapped_data_key: bytes


class PatientKey:
    """An unwrapped patient key, with its AES key schedule. Never printed."""

    __slots__ = ("_cipher", "_key", "_patient_field", "patient_id")

    def __init__(self, patient_id: str, key: bytes) -> None:
        self.patient_id = patient_id
        self._key = key
        self._cipher = AESGCM(key)
        self._patient_field = encode_field(patient_id)

    def __repr__(self) -> str:  # never print key material
        return f"PatientKey(patient_id={self.patient_id!r})"

    def encrypt(
        self, context: RecordContext, plaintext: bytes, *, random: Random = os.urandom
    ) -> SealedRecord:
        """Seal ``plaintext`` (format 1) under a fresh data key, wrapped under this key.

        Draws ``random(32)`` (the data key), then the body's nonce and the wrap's (12 each).
        """
        record_id, patient_id, version, content_type = context
        if patient_id != self.patient_id:
            raise ValueError("record context names another patient")
        data_key = random(KEY_BYTES)
        if len(data_key) != KEY_BYTES:
            raise ValueError("random source returned too few bytes")
        # record id, patient id, version: what both AADs share, encoded once (the same
        # bytes as associated_data; tests check it).
        shared = encode_field(record_id) + self._patient_field + _version(version)
        body = seal(
            data_key,
            plaintext,
            _RECORD_V1 + shared + _content_type_field(content_type),
            random=random,
        )
        wrapped = seal_with(self._cipher, data_key, _DATA_KEY_V1 + shared, random=random)
        return SealedRecord(body, bytes(wrapped))

    def decrypt(
        self,
        context: RecordContext,
        ciphertext: bytes | bytearray | memoryview,
        wrapped_data_key: bytes | None,
    ) -> bytes:
        """Open a record version of format 1 or 2. ``wrapped_data_key`` None: shredded.

        Raises :class:`DecryptionFailed` for every failure, whatever its cause.
        """
        record_id, patient_id, version, content_type = context
        if (
            wrapped_data_key is None
            or len(wrapped_data_key) != WRAPPED_KEY_BYTES
            or patient_id != self.patient_id
        ):
            raise DecryptionFailed(OPAQUE)
        shared = encode_field(record_id) + self._patient_field + _version(version)
        record_format = wrapped_data_key[0]
        if record_format == FORMAT_V2:
            try:
                data_key = self._cipher.decrypt(
                    wrapped_data_key[1:HEADER_BYTES],
                    wrapped_data_key[HEADER_BYTES:],
                    _DATA_KEY_V2 + shared,
                )
            except (InvalidTag, ValueError, TypeError):
                raise DecryptionFailed(OPAQUE) from None
            return open_gcm(
                data_key,
                _ZERO_NONCE,
                ciphertext,
                _RECORD_V2 + shared + _content_type_field(content_type),
            )
        if record_format == FORMAT_V1:
            data_key = open_sealed_with(self._cipher, wrapped_data_key, _DATA_KEY_V1 + shared)
            return open_sealed(
                data_key, ciphertext, _RECORD_V1 + shared + _content_type_field(content_type)
            )
        raise DecryptionFailed(OPAQUE)


def _patient_aad(patient_id: str, master_version: int) -> bytes:
    return associated_data(PURPOSE_PATIENT_KEY, patient_id, str(master_version))


def new_patient_key(
    keyring: MasterKeyring, patient_id: str, *, random: Random = os.urandom
) -> tuple[PatientKey, WrappedPatientKey]:
    """A fresh patient key and its form wrapped under the newest master key."""
    key = random(KEY_BYTES)
    return PatientKey(patient_id, key), _wrap(keyring, patient_id, key, random=random)


def _unwrap_under(
    master: bytes, patient_id: str, master_version: int, wrapped: bytes
) -> PatientKey:
    key = open_sealed(master, wrapped, _patient_aad(patient_id, master_version), reuse=True)
    return PatientKey(patient_id, key)


def unwrap_patient_key(
    keyring: MasterKeyring, patient_id: str, wrapped: WrappedPatientKey | None
) -> PatientKey:
    """Open a wrapped patient key. None (shredded) or a retired master version fail opaquely."""
    if wrapped is None:
        raise DecryptionFailed(OPAQUE)
    master = keyring.key(wrapped.master_version)
    return _unwrap_under(master or b"", patient_id, wrapped.master_version, wrapped.wrapped)


class PatientKeyCache:
    """Unwrapped patient keys, kept across operations (bounded LRU, thread-safe).

    The cache key is everything unwrapping reads: the master key itself, its version, the
    patient id and the wrapped bytes *as just read from the database*. So a hit returns
    exactly what unwrapping would have returned, and the cache holds no state another
    process could disagree with: a shredded patient (NULL row) or a retired master version
    fails before the cache is consulted, and a re-wrapped key (other bytes) is a miss.
    Failures are never cached. Unwrapped keys stay in memory until evicted or
    :meth:`clear` (the service clears it when it shreds a patient).
    """

    def __init__(self, *, maxsize: int = 4096) -> None:
        self._unwrap = lru_cache(maxsize=maxsize)(_unwrap_under)

    def unwrap(
        self, keyring: MasterKeyring, patient_id: str, wrapped: WrappedPatientKey | None
    ) -> PatientKey:
        """Like :func:`unwrap_patient_key`, remembering the result."""
        if wrapped is None:
            raise DecryptionFailed(OPAQUE)
        master = keyring.key(wrapped.master_version)
        if master is None:
            raise DecryptionFailed(OPAQUE)
        # bytes() is free for bytes and makes a database's memoryview hashable
        return self._unwrap(master, patient_id, wrapped.master_version, bytes(wrapped.wrapped))

    def clear(self) -> None:
        self._unwrap.cache_clear()


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
