"""Every key the biometric gate derives, and from what (HKDF-SHA256 throughout).

pepper (server secret, file 0600)
  ├─ transform key(salt)  -> AES-CTR keystream -> the enrollment's random projection
  ├─ commitment key       -> HMAC-SHA256(salt || κ): the keyed, salted commitment of κ
  └─ helper key           -> AES-256-GCM over the helper data at rest
κ (recovered only by a matching face) + pepper
  └─ secp256k1 signing key (the patient's consent key; memory only)

Separate ``info`` labels keep the derived keys independent; a per-enrollment random
salt makes each enrollment's transform and commitment fresh (renewability,
unlinkability).
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import NDArray

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_TRANSFORM = b"vault/biometrics/transform/v1"
_COMMITMENT = b"vault/biometrics/commitment/v1"
_HELPER = b"vault/biometrics/helper-encryption/v1"
_SIGNING = b"vault/biometrics/secp256k1-signing-key/v1"


def hkdf(ikm: bytes, *, info: bytes, salt: bytes | None = None, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def transform_key(pepper: bytes, salt: bytes) -> bytes:
    return hkdf(pepper, salt=salt, info=_TRANSFORM)


def commitment_key(pepper: bytes) -> bytes:
    return hkdf(pepper, info=_COMMITMENT)


def helper_key(pepper: bytes) -> bytes:
    return hkdf(pepper, info=_HELPER)


def commit_secret(key: bytes, salt: bytes, kappa: bytes) -> bytes:
    """Keyed, salted commitment of κ. Without the pepper it cannot even be brute-forced."""
    return hmac.new(key, b"kappa|" + salt + kappa, hashlib.sha256).digest()


def commitment_matches(key: bytes, salt: bytes, kappa: bytes, commitment: bytes) -> bool:
    return hmac.compare_digest(commit_secret(key, salt, kappa), commitment)


def keyed_gaussian(key: bytes, shape: tuple[int, int]) -> NDArray[np.float64]:
    """A standard-normal matrix drawn from an AES-256-CTR keystream under ``key``.

    Without the key the matrix (the enrollment's keyed transform) is unpredictable;
    with it, deterministic, so verification rebuilds the same transform.
    """
    count = shape[0] * shape[1]
    half = (count + 1) // 2
    encryptor = Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor()
    raw = encryptor.update(b"\x00" * (half * 2 * 8)) + encryptor.finalize()
    words = np.frombuffer(raw, dtype="<u8").reshape(2, half)
    # 53-bit uniforms in (0, 1], then Box-Muller.
    u1 = ((words[0] >> np.uint64(11)).astype(np.float64) + 1.0) / float(1 << 53)
    u2 = (words[1] >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    radius = np.sqrt(-2.0 * np.log(u1))
    normals = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
    return normals[:count].reshape(shape)


def signing_key(kappa: bytes, pepper: bytes) -> bytes:
    """The patient's secp256k1 private key (32 bytes) from κ and the pepper.

    HKDF output is reduced to a valid scalar by re-deriving with a counter in the
    (probability 2^-128) case it is zero or not below the curve order.
    """
    salt = hkdf(pepper, info=_SIGNING + b"/salt")
    for counter in range(256):
        candidate = hkdf(kappa, salt=salt, info=_SIGNING + bytes([counter]))
        value = int.from_bytes(candidate, "big")
        if 0 < value < SECP256K1_ORDER:
            return candidate
    raise AssertionError("unreachable: 256 HKDF outputs outside the curve order")
