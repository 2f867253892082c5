"""AES-256-GCM sealing with a one-byte format tag, and canonical associated data.

A value sealed by :func:`seal` (a wrapped patient key, and every wrapped data key and
record body of format 1) has the layout::

    format (1 byte, 0x01) || nonce (12 bytes, random) || AES-256-GCM ciphertext || tag (16)

Record bodies and data keys of format 2 (read only) are laid out by
:mod:`vault.crypto.envelope`.
Associated data is never stored: the reader rebuilds it from what it expects (record id,
patient, version, content type...), so a ciphertext moved anywhere else fails to open.
Every failure to open raises the one opaque :class:`~vault.errors.DecryptionFailed`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionFailed

#: Source of randomness: ``random(n)`` returns ``n`` unpredictable bytes. Injectable for
#: test vectors; production always uses :func:`os.urandom`.
Random = Callable[[int], bytes]

FORMAT_V1 = 0x01
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + NONCE_BYTES
OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES

#: The message of every :class:`DecryptionFailed`, whatever the cause.
OPAQUE = "ciphertext could not be opened"

_length = struct.Struct(">I").pack


def encode_field(field: str) -> bytes:
    """One field of associated data: its 4-byte big-endian length, then its UTF-8 bytes."""
    encoded = field.encode("utf-8")
    return _length(len(encoded)) + encoded


def purpose_prefix(purpose: str) -> bytes:
    """What associated data for ``purpose`` starts with: ``b"vault:" + purpose + b"\\x00"``."""
    return b"vault:" + purpose.encode("ascii") + b"\x00"


def associated_data(purpose: str, *fields: str) -> bytes:
    """Encode ``purpose`` and ``fields`` unambiguously for use as GCM associated data.

    Layout: ``b"vault:" + purpose + b"\\x00"``, then for each field a 4-byte big-endian
    length and its UTF-8 bytes. Length prefixes make ``("ab", "c")`` and ``("a", "bc")``
    differ; the purpose keeps a wrapped key from ever opening as a record.
    """
    return purpose_prefix(purpose) + b"".join(encode_field(field) for field in fields)


@lru_cache(maxsize=64)
def long_lived(key: bytes) -> AESGCM:
    """The cipher of a master key, its key schedule kept (bounded) across operations.

    Building an ``AESGCM`` costs about a microsecond (as much as sealing 10 KB); master
    keys are few and reused. Patient keys keep their own (see ``PatientKeyCache``); data
    keys are used once and never come here.
    """
    return AESGCM(key)


def seal(
    key: bytes, plaintext: bytes, aad: bytes, *, random: Random = os.urandom, reuse: bool = False
) -> bytearray:
    """Encrypt ``plaintext`` under ``key`` (32 bytes) bound to ``aad`` (format 1).

    ``reuse`` marks a long-lived key (a master key) whose key schedule may be cached.
    """
    return seal_with(long_lived(key) if reuse else AESGCM(key), plaintext, aad, random=random)


def seal_with(
    cipher: AESGCM, plaintext: bytes, aad: bytes, *, random: Random = os.urandom
) -> bytearray:
    """:func:`seal` with a ready cipher (a cached patient key's)."""
    nonce = random(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError("random source returned a short nonce")
    out = bytearray(HEADER_BYTES + len(plaintext) + TAG_BYTES)
    out[0] = FORMAT_V1
    out[1:HEADER_BYTES] = nonce
    cipher.encrypt_into(nonce, plaintext, aad, memoryview(out)[HEADER_BYTES:])
    return out


def open_sealed(
    key: bytes | None,
    sealed: bytes | bytearray | memoryview,
    aad: bytes,
    *,
    reuse: bool = False,
) -> bytes:
    """Decrypt what :func:`seal` produced.

    Raises :class:`DecryptionFailed` — and only that — when the key is missing (shredded),
    has the wrong length, the input is malformed or truncated, or authentication fails.
    """
    if key is None or len(key) != KEY_BYTES:
        raise DecryptionFailed(OPAQUE)
    view = memoryview(sealed)
    try:
        cipher = long_lived(key) if reuse else AESGCM(key)
    except ValueError:
        raise DecryptionFailed(OPAQUE) from None
    return open_sealed_with(cipher, view, aad)


def open_sealed_with(cipher: AESGCM, sealed: bytes | bytearray | memoryview, aad: bytes) -> bytes:
    """:func:`open_sealed` with a ready cipher (a cached patient key's)."""
    view = memoryview(sealed)
    if len(view) < OVERHEAD_BYTES or view[0] != FORMAT_V1:
        raise DecryptionFailed(OPAQUE)
    try:
        return cipher.decrypt(bytes(view[1:HEADER_BYTES]), view[HEADER_BYTES:], aad)
    except (InvalidTag, ValueError, TypeError):
        raise DecryptionFailed(OPAQUE) from None


def open_gcm(
    key: bytes, nonce: bytes, ciphertext_and_tag: bytes | bytearray | memoryview, aad: bytes
) -> bytes:
    """AES-256-GCM decryption of ``ciphertext || tag``; :class:`DecryptionFailed` on failure.

    One ``AESGCM.decrypt`` whatever the size. The library's incremental decryptor hands
    the interpreter lock back between chunks, but for a 25 MB body it cost three times
    the CPU (38 against 14 ms) to shorten the longest stall of a thread beside it from 7 to
    5 ms (medians of 6, on a busy 2-core machine): not worth it.
    """
    view = memoryview(ciphertext_and_tag)
    if len(nonce) != NONCE_BYTES or len(view) < TAG_BYTES:
        raise DecryptionFailed(OPAQUE)
    try:
        return AESGCM(key).decrypt(nonce, view, aad)
    except (InvalidTag, ValueError, TypeError):
        raise DecryptionFailed(OPAQUE) from None
