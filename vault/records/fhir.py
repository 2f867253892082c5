"""FHIR validation with ``fhir.resources``' R4B models.

Why R4B, not the library's default R5: the data the vault receives (Synthea, the HL7
example set, most EHR exports) is FHIR R4 (4.0.1), and R4B (4.3) is R4's compatible
successor — R4 resources validate against it unchanged, while R5 renamed and removed
elements (e.g. ``MedicationRequest.medicationCodeableConcept``) that R4 data uses.

Validation is structural (types, cardinality, unknown elements), plus the required value
sets of ``code`` elements (``Observation.status`` is one of eight codes), which the
library lists but does not check; profiles and whether references resolve are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as ResourceModel
from pydantic import BaseModel, ValidationError

from vault.errors import InvalidRecord

FHIR_VERSION = "4.3"
FHIR_CONTENT_TYPE = f"application/fhir+json; fhirVersion={FHIR_VERSION}"
MAX_REPORTED_ERRORS = 50

Resource = dict[str, Any]


@lru_cache(maxsize=256)
def _model_class(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def is_resource_type(name: str) -> bool:
    """Whether ``name`` is a FHIR R4B resource type (not a datatype such as ``Coding``)."""
    try:
        model = _model_class(name)
    except (KeyError, ValueError, AttributeError, ImportError):
        return False
    return isinstance(model, type) and issubclass(model, ResourceModel)


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
        model = _model_class(resource_type).model_validate(resource)
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
    unbound = _codes_outside_required_value_sets(model)
    if unbound:
        errors = [
            {"field": prefix + field, "message": f"{code!r} is not in the required value set"}
            for field, code in unbound[:MAX_REPORTED_ERRORS]
        ]
        raise InvalidRecord(
            f"invalid FHIR {resource_type}: " + ", ".join(error["field"] for error in errors[:5]),
            details={"errors": errors, "resource_type": resource_type},
        )
    return resource_type


#: Required value sets that ``fhir.resources`` lists only in part (ending in ``"+"``) or
#: not at all (its datatypes list none): the whole of each, from the FHIR R4B
#: specification, by model class (or a base class, e.g. Quantity for Age) and element.
_OBSERVATION_STATUS = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
_ENCOUNTER_STATUS = frozenset(
    {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)
_COMPLETED_VALUE_SETS: dict[tuple[str, str], frozenset[str]] = {
    ("Observation", "status"): _OBSERVATION_STATUS,
    ("DetectedIssue", "status"): _OBSERVATION_STATUS,
    ("RiskAssessment", "status"): _OBSERVATION_STATUS,
    ("DiagnosticReport", "status"): frozenset(
        {
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("Encounter", "status"): _ENCOUNTER_STATUS,
    ("EncounterStatusHistory", "status"): _ENCOUNTER_STATUS,
    ("Task", "status"): frozenset(
        {
            "draft",
            "requested",
            "received",
            "accepted",
            "rejected",
            "ready",
            "cancelled",
            "in-progress",
            "on-hold",
            "failed",
            "completed",
            "entered-in-error",
        }
    ),
    ("DeviceUseStatement", "status"): frozenset(
        {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold"}
    ),
    ("SupplyRequest", "status"): frozenset(
        {"draft", "active", "suspended", "cancelled", "completed", "entered-in-error", "unknown"}
    ),
    ("DeviceUdiCarrier", "entryType"): frozenset(
        {"barcode", "rfid", "manual", "card", "self-reported", "unknown"}
    ),
    ("QuestionnaireItem", "type"): frozenset(
        {
            "group",
            "display",
            "boolean",
            "decimal",
            "integer",
            "date",
            "dateTime",
            "time",
            "string",
            "text",
            "url",
            "choice",
            "open-choice",
            "attachment",
            "reference",
            "quantity",
        }
    ),
    ("Quantity", "comparator"): frozenset({"<", "<=", ">=", ">"}),
    ("Narrative", "status"): frozenset({"generated", "extensions", "additional", "empty"}),
    ("HumanName", "use"): frozenset(
        {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}
    ),
    ("ContactPoint", "system"): frozenset(
        {"phone", "fax", "email", "pager", "url", "sms", "other"}
    ),
    ("ContactPoint", "use"): frozenset({"home", "work", "temp", "old", "mobile"}),
    ("Address", "use"): frozenset({"home", "work", "temp", "old", "billing"}),
    ("Address", "type"): frozenset({"postal", "physical", "both"}),
    ("Identifier", "use"): frozenset({"usual", "official", "temp", "secondary", "old"}),
    ("StructureMapGroupRuleTarget", "transform"): frozenset(
        {
            "create",
            "copy",
            "truncate",
            "escape",
            "cast",
            "append",
            "translate",
            "reference",
            "dateOp",
            "uuid",
            "pointer",
            "evaluate",
            "cc",
            "c",
            "qty",
            "id",
            "cp",
        }
    ),
}


@lru_cache(maxsize=2048)
def _required_codes(model: type[BaseModel]) -> dict[str, tuple[str, frozenset[str]]]:
    """The ``code`` fields of ``model`` with a required value set: name -> (JSON name, codes)."""
    bound: dict[str, tuple[str, frozenset[str]]] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        listed = extra.get("enum_values") if isinstance(extra, dict) else None
        json_name = field.alias or name
        codes = next(
            (
                _COMPLETED_VALUE_SETS[(cls.__name__, json_name)]
                for cls in model.__mro__
                if (cls.__name__, json_name) in _COMPLETED_VALUE_SETS
            ),
            None,
        )
        if codes is None:
            if not isinstance(listed, list) or "+" in listed:
                continue  # no value set listed, or a part only: left unchecked
            codes = frozenset(str(code) for code in listed)
        bound[name] = (json_name, codes)
    return bound


def _codes_outside_required_value_sets(root: BaseModel) -> list[tuple[str, str]]:
    """(dotted JSON path, code) of every code in ``root`` outside its required value set,
    walked without recursion (contained resources and Bundle entries included)."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[BaseModel, str]] = [(root, "")]
    while stack:
        model, path = stack.pop()
        bound = _required_codes(type(model))
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            if value is None:
                continue
            if name in bound:
                json_name, codes = bound[name]
                for index, code in enumerate(value if isinstance(value, list) else [value]):
                    if str(code) not in codes:
                        where = json_name if not isinstance(value, list) else f"{json_name}.{index}"
                        found.append((path + where, str(code)))
                continue
            key = _json_name(type(model), name)
            if isinstance(value, BaseModel):
                stack.append((value, f"{path}{key}."))
            elif isinstance(value, list):
                stack.extend(
                    (item, f"{path}{key}.{index}.")
                    for index, item in enumerate(value)
                    if isinstance(item, BaseModel)
                )
    return sorted(found)


def _json_name(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def canonical_json(resource: Resource) -> bytes:
    """Compact UTF-8 JSON, the form in which resources are encrypted and returned."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
