"""Required FHIR value sets and resource types, through the real ``fhir.resources`` models."""

from __future__ import annotations

from typing import Any

import pytest

from vault.access.scopes import check_scope
from vault.errors import InvalidInput, InvalidRecord
from vault.records.fhir import is_resource_type, validate_resource


def _observation(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}, **extra}


def _refused_fields(resource: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidRecord) as refused:
        validate_resource(resource)
    return [error["field"] for error in refused.value.details["errors"]]


@pytest.mark.parametrize(
    "status",
    ["registered", "preliminary", "final", "amended", "corrected", "cancelled",
     "entered-in-error", "unknown"],
)  # fmt: skip
def test_every_observation_status_of_the_value_set_is_taken(status: str) -> None:
    assert validate_resource(_observation(status=status)) == "Observation"


def test_a_code_outside_a_required_value_set_is_refused_where_it_is() -> None:
    assert _refused_fields(_observation(status="maybe")) == ["status"]
    # Nested in a datatype, in a contained resource, in a Bundle entry:
    assert _refused_fields(_observation(valueQuantity={"value": 1, "comparator": "~"})) == [
        "valueQuantity.comparator"
    ]
    contained = _observation(contained=[{"resourceType": "Patient", "gender": "robot"}])
    assert _refused_fields(contained) == ["contained.0.gender"]
    entry = {"resource": _observation(status="maybe"), "request": {"method": "POST", "url": "x"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    assert _refused_fields(bundle) == ["entry.0.resource.status"]
    assert _refused_fields({**bundle, "type": "pile", "entry": []}) == ["type"]


def test_codes_the_library_lists_in_part_are_checked_against_the_whole_set() -> None:
    # fhir.resources lists DiagnosticReport.status as registered, partial, preliminary,
    # final, "+"; "appended" is in R4B's value set, "maybe" is not.
    report = {"resourceType": "DiagnosticReport", "code": {"text": "panel"}}
    assert validate_resource({**report, "status": "appended"}) == "DiagnosticReport"
    assert _refused_fields({**report, "status": "maybe"}) == ["status"]


@pytest.mark.parametrize("name", ["Coding", "HumanName", "Quantity", "Extension", "Meta"])
def test_datatypes_are_not_resource_types(name: str) -> None:
    assert not is_resource_type(name)
    with pytest.raises(InvalidInput):
        check_scope(name)
    with pytest.raises(InvalidRecord):
        validate_resource({"resourceType": name})


@pytest.mark.parametrize(
    "name", ["Observation", "Patient", "Bundle", "DocumentReference", "Binary"]
)
def test_resource_types_are_scopes(name: str) -> None:
    assert is_resource_type(name)
    assert check_scope(name) == name
