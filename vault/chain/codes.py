"""The ``bytes32`` codes the consent registry stores: scopes, purposes, reason hashes.

Nothing personal goes on chain. A scope is ``keccak256`` of a FHIR resource type name
(``"Observation"``) or of ``"*"`` for all data (the contract's ``ALL_SCOPES``); a purpose
is ``keccak256`` of an HL7 v3 PurposeOfUse code (``"TREAT"``); an emergency reason is a
salted hash of the free-text reason, which stays off chain with its salt.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache

from eth_utils.crypto import keccak

from vault.errors import InvalidInput

ALL_SCOPES_NAME = "*"
ALL_SCOPES: bytes = keccak(text=ALL_SCOPES_NAME)

# HL7 v3 PurposeOfUse codes the vault accepts (a subset; extend as providers need).
PURPOSES_OF_USE = frozenset(
    {
        "TREAT",  # treatment
        "ETREAT",  # emergency treatment
        "HPAYMT",  # healthcare payment
        "HOPERAT",  # healthcare operations
        "HRESCH",  # healthcare research
        "PATRQT",  # patient requested
        "FAMRQT",  # family requested
        "PUBHLTH",  # public health
        "CAREMGT",  # care management
    }
)

_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
REASON_SALT_BYTES = 16


@lru_cache(maxsize=1024)
def scope_id(resource_type: str) -> bytes:
    """The scope code for a FHIR resource type, or :data:`ALL_SCOPES` for ``"*"``."""
    if resource_type == ALL_SCOPES_NAME:
        return ALL_SCOPES
    if not _RESOURCE_TYPE.match(resource_type):
        raise InvalidInput(
            f"not a FHIR resource type name: {resource_type!r}", details={"scope": resource_type}
        )
    return keccak(text=resource_type)


@lru_cache(maxsize=64)
def purpose_id(code: str) -> bytes:
    """The purpose code for an HL7 PurposeOfUse code such as ``"TREAT"``."""
    if code not in PURPOSES_OF_USE:
        raise InvalidInput(
            f"unsupported purpose of use: {code!r}",
            details={"purpose": code, "allowed": sorted(PURPOSES_OF_USE)},
        )
    return keccak(text=code)


def new_reason_salt() -> bytes:
    """A fresh random salt for :func:`reason_hash` (store it with the reason, off chain)."""
    return secrets.token_bytes(REASON_SALT_BYTES)


def reason_hash(reason: str, salt: bytes) -> bytes:
    """Salted commitment to an emergency reason: ``keccak256(salt || utf8(reason))``.

    The salt keeps short, guessable reasons ("cardiac arrest") from being confirmed by
    hashing candidates against the chain.
    """
    if len(salt) < REASON_SALT_BYTES:
        raise InvalidInput(f"reason salt must be at least {REASON_SALT_BYTES} bytes")
    if not reason.strip():
        raise InvalidInput("an emergency access needs a reason")
    return keccak(salt + reason.encode("utf-8"))
