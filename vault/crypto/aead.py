"""AES-256-GCM sealing with a one-byte format tag, and canonical associated data.

Every ciphertext the vault writes — a record's body, a wrapped data key, a wrapped
patient key — has the same layout::

    format (1 byte, 0x01) || nonce (12 bytes, random) || AES-256-GCM ciphertext || tag (16)

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

_OPAQUE = "ciphertext could not be opened"


def associated_data(purpose: str, *fields: str) -> bytes:
    """Encode ``purpose`` and ``fields`` unambiguously for use as GCM associated data.

    Layout: ``b"vault:" + purpose + b"\\x00"``, then for each field a 4-byte big-endian
    length and its UTF-8 bytes. Length prefixes make ``("ab", "c")`` and ``("a", "bc")``
    differ; the purpose keeps a wrapped key from ever opening as a record.
    """
    parts = [b"vault:", purpose.encode("ascii"), b"\x00"]
    for field in fields:
        encoded = field.encode("utf-8")
        parts.append(struct.pack(">I", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


@lru_cache(maxsize=4096)
def _long_lived(key: bytes) -> AESGCM:
    # The AES key schedule costs about as much as sealing 10 KB; master and patient keys
    # are reused, so their schedules are kept (bounded). Data keys are used once: never here.
    return AESGCM(key)


def _cipher(key: bytes, reuse: bool) -> AESGCM:
    return _long_lived(key) if reuse else AESGCM(key)


def seal(
    key: bytes, plaintext: bytes, aad: bytes, *, random: Random = os.urandom, reuse: bool = False
) -> bytearray:
    """Encrypt ``plaintext`` under ``key`` (32 bytes) bound to ``aad``.

    Encrypts straight into the output buffer so large records are not copied twice.
    ``reuse`` marks a long-lived key (master, patient) whose key schedule may be cached.
    """
    nonce = random(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError("random source returned a short nonce")
    out = bytearray(HEADER_BYTES + len(plaintext) + TAG_BYTES)
    out[0] = FORMAT_V1
    out[1:HEADER_BYTES] = nonce
    _cipher(key, reuse).encrypt_into(nonce, plaintext, aad, memoryview(out)[HEADER_BYTES:])
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
    view = memoryview(sealed)
    if key is None or len(key) != KEY_BYTES or len(view) < OVERHEAD_BYTES or view[0] != FORMAT_V1:
        raise DecryptionFailed(_OPAQUE)
    try:
        cipher = _cipher(key, reuse)
        return cipher.decrypt(bytes(view[1:HEADER_BYTES]), view[HEADER_BYTES:], aad)
    except (InvalidTag, ValueError, TypeError):
        raise DecryptionFailed(_OPAQUE) from None
