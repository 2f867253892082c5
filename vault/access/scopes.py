"""What a consent names, and how it is written on chain without anything personal.

A *scope* is a data category: a FHIR resource type (``Observation``) or ``all``. On
chain it is ``keccak256("vault.scope:" + scope)``. A *purpose of use* is an HL7 v3
PurposeOfUse code (``TREAT``, ``HPAYMT``, ``HRESCH``...), written on chain as its ASCII
bytes right-padded to 32 bytes, so a block explorer shows the code and nothing else.
"""

from __future__ import annotations

from web3 import Web3

from vault.errors import InvalidInput
from vault.records.fhir import is_resource_type

ALL_DATA = "all"

#: HL7 v3 PurposeOfUse codes a request may name (a subset: the ones a data vault meets).
PURPOSES: dict[str, str] = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "HPAYMT": "healthcare payment",
    "HOPERAT": "healthcare operations",
    "HRESCH": "healthcare research",
    "PATRQT": "patient requested",
    "FAMRQT": "family requested",
    "PUBHLTH": "public health",
    "CAREMGT": "care management",
    "CLINTRCH": "clinical trial research",
}


def check_scope(scope: str) -> str:
    """``scope`` if it names ``all`` or a FHIR resource type; else :class:`InvalidInput`."""
    if scope == ALL_DATA or is_resource_type(scope):
        return scope
    raise InvalidInput(
        f"unknown scope {scope!r}: use 'all' or a FHIR resource type",
        details={"field": "scope"},
    )


def scope_id(scope: str) -> bytes:
    return bytes(Web3.keccak(text="vault.scope:" + check_scope(scope)))


def check_purpose(purpose: str) -> str:
    if purpose in PURPOSES:
        return purpose
    raise InvalidInput(
        f"unknown purpose of use {purpose!r}",
        details={"field": "purpose", "allowed": sorted(PURPOSES)},
    )


def purpose_id(purpose: str) -> bytes:
    return check_purpose(purpose).encode("ascii").ljust(32, b"\0")


def purpose_from_id(value: bytes) -> str:
    return value.rstrip(b"\0").decode("ascii", errors="replace")
