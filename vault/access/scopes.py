"""Scopes and purposes as the API names them, checked before they become chain codes.

The API's scope is ``all`` or a FHIR resource type the FHIR library knows; on chain it
becomes the registry's code (:mod:`vault.chain.codes`: ``keccak256`` of the type name, or
``ALL_SCOPES`` for all data). Purposes are HL7 PurposeOfUse codes.
"""

from __future__ import annotations

from vault.chain import codes
from vault.errors import InvalidInput
from vault.records.fhir import is_resource_type

ALL_DATA = "all"
PURPOSES = codes.PURPOSES_OF_USE


def check_scope(scope: str) -> str:
    """``scope`` if it names ``all`` or a FHIR resource type; else :class:`InvalidInput`."""
    if scope == ALL_DATA or is_resource_type(scope):
        return scope
    raise InvalidInput(
        f"unknown scope {scope!r}: use 'all' or a FHIR resource type",
        details={"field": "scope"},
    )


def scope_id(scope: str) -> bytes:
    check_scope(scope)
    return codes.scope_id(codes.ALL_SCOPES_NAME if scope == ALL_DATA else scope)


def check_purpose(purpose: str) -> str:
    codes.purpose_id(purpose)  # raises InvalidInput naming the allowed codes
    return purpose


def purpose_id(purpose: str) -> bytes:
    return codes.purpose_id(purpose)
