"""Every key the biometric gate derives, and from what (HKDF-SHA256 throughout).

pepper (server secret, file 0600) [+ Argon2id(PIN, salt) if the patient chose a PIN]
  ├─ transform key(salt)  -> AES keystream -> the enrollment's random projection (quantizer)
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

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_TRANSFORM = b"vault/biometrics/transform/v1"
_COMMITMENT = b"vault/biometrics/commitment/v1"
_HELPER = b"vault/biometrics/helper-encryption/v1"
_SIGNING = b"vault/biometrics/secp256k1-signing-key/v1"
_PIN = b"vault/biometrics/pin/v1|"
#: Argon2id cost of one PIN guess: RFC 9106's second recommended setting (t = 3,
#: 64 MiB) with one lane, so that every offline guess costs this much on one core.
PIN_TIME_COST = 3
PIN_MEMORY_KIB = 64 * 1024
PIN_PARALLELISM = 1


def hkdf(ikm: bytes, *, info: bytes, salt: bytes | None = None, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def transform_key(pepper: bytes, salt: bytes, factor: bytes | None = None) -> bytes:
    """The enrollment's keyed-transform key; ``factor`` is :func:`second_factor`'s output.

    With a second factor, a wrong PIN gives another transform: the face's bits come out
    unrelated to the helper data and the template does not open, so an offline attacker
    must try faces and PINs together, paying one Argon2id per PIN guessed.
    """
    if factor is None:
        return hkdf(pepper, salt=salt, info=_TRANSFORM)
    return hkdf(pepper + factor, salt=salt, info=_TRANSFORM + b"/second-factor")


def second_factor(pin: str, salt: bytes) -> bytes:
    """Argon2id(PIN) under the enrollment's salt (32 bytes); costs :data:`PIN_MEMORY_KIB`."""
    return hash_secret_raw(
        pin.encode(),
        salt=_PIN + salt,
        time_cost=PIN_TIME_COST,
        memory_cost=PIN_MEMORY_KIB,
        parallelism=PIN_PARALLELISM,
        hash_len=32,
        type=Type.ID,
    )


def commitment_key(pepper: bytes) -> bytes:
    return hkdf(pepper, info=_COMMITMENT)


def helper_key(pepper: bytes) -> bytes:
    return hkdf(pepper, info=_HELPER)


def commit_secret(key: bytes, salt: bytes, kappa: bytes) -> bytes:
    """Keyed, salted commitment of κ. Without the pepper it cannot even be brute-forced."""
    return hmac.new(key, b"kappa|" + salt + kappa, hashlib.sha256).digest()


def commitment_matches(key: bytes, salt: bytes, kappa: bytes, commitment: bytes) -> bool:
    return hmac.compare_digest(commit_secret(key, salt, kappa), commitment)


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
