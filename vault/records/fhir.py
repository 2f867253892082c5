"""FHIR validation with ``fhir.resources``' R4B models.

Why R4B, not the library's default R5: the data the vault receives (Synthea, the HL7
example set, most EHR exports) is FHIR R4 (4.0.1), and R4B (4.3) is R4's compatible
successor — R4 resources validate against it unchanged, while R5 renamed and removed
elements (e.g. ``MedicationRequest.medicationCodeableConcept``) that R4 data uses.

Validation is structural (types, cardinality, unknown elements); the library does not
check code bindings, profiles or whether references resolve.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from vault.errors import InvalidRecord

FHIR_VERSION = "4.3"
FHIR_CONTENT_TYPE = f"application/fhir+json; fhirVersion={FHIR_VERSION}"
MAX_REPORTED_ERRORS = 50

Resource = dict[str, Any]


@lru_cache(maxsize=256)
def _model_class(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def is_resource_type(name: str) -> bool:
    try:
        _model_class(name)
    except (KeyError, ValueError, AttributeError, ImportError):
        return False
    return True


def parse_json(raw: bytes | str | Mapping[str, Any], *, what: str = "resource") -> Resource:
    """Decode a JSON object; refuse anything else with :class:`InvalidRecord`."""
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRecord(
            f"{what} is not valid JSON", details={"errors": [{"field": "", "message": str(exc)}]}
        ) from None
    if not isinstance(value, dict):
        raise InvalidRecord(
            f"{what} must be a JSON object",
            details={"errors": [{"field": "", "message": "not an object"}]},
        )
    return value


def validate_resource(resource: Resource, *, location: str = "") -> str:
    """Validate ``resource`` as FHIR R4B; return its resource type.

    Raises :class:`InvalidRecord` whose ``details['errors']`` lists ``{"field", "message"}``
    for each failing element (dotted path, list indexes as numbers), prefixed with
    ``location`` (e.g. ``entry.3.resource``) when given.
    """
    resource_type = resource.get("resourceType")
    prefix = f"{location}." if location else ""
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        raise InvalidRecord(
            "unknown or missing resourceType",
            details={
                "errors": [
                    {"field": f"{prefix}resourceType", "message": "not a FHIR R4B resource type"}
                ]
            },
        )
    try:
        _model_class(resource_type).model_validate(resource)
    except ValidationError as exc:
        errors = [
            {
                "field": prefix + ".".join(str(part) for part in error["loc"]),
                "message": error["msg"],
            }
            for error in exc.errors()[:MAX_REPORTED_ERRORS]
        ]
        fields = ", ".join(error["field"] or "(resource)" for error in errors[:5])
        raise InvalidRecord(
            f"invalid FHIR {resource_type}: {fields}",
            details={"errors": errors, "resource_type": resource_type},
        ) from None
    return resource_type


def canonical_json(resource: Resource) -> bytes:
    """Compact UTF-8 JSON, the form in which resources are encrypted and returned."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
